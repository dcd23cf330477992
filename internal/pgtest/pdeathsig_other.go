//go:build unix && !linux

package pgtest

import "syscall"

// setPdeathsig does nothing: only Linux has a parent-death signal. A server
// whose test binary died notices that its data directory is gone (the next
// test binary removes it) and shuts itself down.
func setPdeathsig(*syscall.SysProcAttr) {}
