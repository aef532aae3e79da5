//go:build !linux

package runner

import "syscall"

// sysProcAttr returns nil: only Linux can tie the runner's life to olm's.
func sysProcAttr() *syscall.SysProcAttr { return nil }
