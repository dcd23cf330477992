//go:build linux

package pgtest

import "syscall"

// setPdeathsig makes the kernel kill the child when the test binary dies,
// even by SIGKILL or a crash, so that no server outlives its tests.
func setPdeathsig(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGKILL
}
