//go:build linux

package pglocal

import "syscall"

// setPdeathsig makes the kernel kill the child when its owner process dies,
// even by SIGKILL or a crash, so that no server outlives its owner.
func setPdeathsig(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGKILL
}
