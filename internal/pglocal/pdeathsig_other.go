//go:build unix && !linux

package pglocal

import "syscall"

// setPdeathsig does nothing: only Linux has a parent-death signal. A server
// whose owner died notices that its data directory is gone (the next Start
// removes it) and shuts itself down.
func setPdeathsig(*syscall.SysProcAttr) {}
