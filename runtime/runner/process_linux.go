package runner

import "syscall"

// sysProcAttr makes the kernel kill the runner if olm itself dies, so no
// orphaned runner keeps a model in memory.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
