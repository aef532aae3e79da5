package sched

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// SystemMemory returns the machine's total and currently available memory
// in bytes, from /proc/meminfo. A value for Options.MemoryLimit is, for
// example, the available memory at start plus what olm already holds.
func SystemMemory() (total, available int64, err error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "MemTotal:":
			total = v * 1024
		case "MemAvailable:":
			available = v * 1024
		}
	}
	if total == 0 {
		return 0, 0, fmt.Errorf("sched: no MemTotal in /proc/meminfo")
	}
	return total, available, sc.Err()
}
