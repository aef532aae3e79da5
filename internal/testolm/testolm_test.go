package testolm

import (
	"errors"
	"os/exec"
	"testing"
	"time"
)

// TestStartReportsTakenPort: a process that exits because its port is taken
// is told apart from other early exits, so Serve can pick another port.
func TestStartReportsTakenPort(t *testing.T) {
	taken := exec.Command("sh", "-c", "echo 'listen tcp 127.0.0.1:1: bind: address already in use' >&2; exit 1")
	if err := start(t, taken, "http://127.0.0.1:1/", 10*time.Second); !errors.Is(err, errAddrInUse) {
		t.Fatalf("start: %v, want errAddrInUse", err)
	}
	other := exec.Command("sh", "-c", "echo 'no model' >&2; exit 2")
	if err := start(t, other, "http://127.0.0.1:1/", 10*time.Second); err == nil || errors.Is(err, errAddrInUse) {
		t.Fatalf("start: %v, want a plain exit error", err)
	}
}
