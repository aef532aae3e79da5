//go:build !linux

package sched

import "errors"

// SystemMemory returns the machine's total and available memory in bytes;
// only Linux is supported, elsewhere it returns an error.
func SystemMemory() (total, available int64, err error) {
	return 0, 0, errors.New("sched: system memory is only known on Linux")
}
