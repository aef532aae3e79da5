//go:build cgo

package llama

// The pinned llama.cpp release is built by scripts/llama-cpp.sh and linked
// at ./llama.cpp (src/ = upstream source, lib/ = its static libraries).
// llama.cpp's CPU backend is built with OpenMP, hence -lgomp. libmtmd
// (images, mtmd.go) uses libllama and ggml, so it comes before them.

/*
#cgo CFLAGS: -O2 -I${SRCDIR}/llama.cpp/src/include -I${SRCDIR}/llama.cpp/src/ggml/include
#cgo CXXFLAGS: -O2 -std=c++17 -I${SRCDIR}/llama.cpp/src/include -I${SRCDIR}/llama.cpp/src/ggml/include -I${SRCDIR}/llama.cpp/src/common -I${SRCDIR}/llama.cpp/src/vendor
#cgo LDFLAGS: -L${SRCDIR}/llama.cpp/lib -lllama-common -lllama-common-base -lcpp-httplib -lmtmd -lllama -lvendor-hash -lggml -lggml-cpu -lggml-base -lstdc++ -lm -lgomp -lpthread -ldl
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

var backendOnce sync.Once

// initBackend initializes llama.cpp once per process and installs the quiet
// log filter.
func initBackend() {
	backendOnce.Do(func() {
		C.olm_log_init()
		C.llama_backend_init()
	})
}

// Available reports whether this build can run inference (true with cgo).
func Available() bool { return true }

// SetLogLevel sets which llama.cpp log lines reach stderr; the default is
// LogOff. It is safe to call at any time.
func SetLogLevel(l LogLevel) {
	initBackend()
	var lvl C.int
	switch l {
	case LogOff:
		lvl = 0
	case LogError:
		lvl = C.GGML_LOG_LEVEL_ERROR
	case LogWarn:
		lvl = C.GGML_LOG_LEVEL_WARN
	case LogInfo:
		lvl = C.GGML_LOG_LEVEL_INFO
	default:
		lvl = C.GGML_LOG_LEVEL_DEBUG
	}
	C.olm_log_set_level(lvl)
}

// SystemInfo describes the CPU features and backends llama.cpp was built
// with.
func SystemInfo() string {
	initBackend()
	return C.GoString(C.llama_print_system_info())
}

// SupportsGPUOffload reports whether layers can be offloaded to a GPU (a
// `cuda` build with a device present).
func SupportsGPUOffload() bool { initBackend(); return bool(C.llama_supports_gpu_offload()) }

// SupportsMMap reports whether models can be memory-mapped.
func SupportsMMap() bool { return bool(C.llama_supports_mmap()) }

// SupportsMLock reports whether models can be locked in RAM.
func SupportsMLock() bool { return bool(C.llama_supports_mlock()) }

// lastError returns llama.cpp's most recent logged error line ("" if none)
// and clears it.
func lastError() string {
	p := C.olm_log_last_error()
	if p == nil {
		return ""
	}
	defer C.olm_free(p)
	return C.GoString(p)
}

// takeErr converts a shim error string to a Go error wrapping sentinel and
// frees it. A nil string gives a plain sentinel.
func takeErr(sentinel error, p *C.char) error {
	if p == nil {
		return sentinel
	}
	defer C.olm_free(p)
	return fmt.Errorf("%w: %s", sentinel, C.GoString(p))
}

// takeString converts a shim string to Go and frees it.
func takeString(p *C.char) string {
	if p == nil {
		return ""
	}
	defer C.olm_free(p)
	return C.GoString(p)
}

// cstr returns a C copy of s; the caller frees it with C.free.
func cstr(s string) *C.char { return C.CString(s) }

func free(p *C.char) { C.free(unsafe.Pointer(p)) }

// closer is embedded by every type that owns C memory: it makes Close
// idempotent and keeps the finalizer a safety net only.
type closer struct {
	mu     sync.Mutex
	closed bool
}

// markClosed reports whether the caller is the one that closes.
func (c *closer) markClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.closed = true
	return true
}

var errNil = errors.New("llama: nil receiver")

// keepAlive is runtime.KeepAlive, named for readability at call sites.
func keepAlive(x any) { runtime.KeepAlive(x) }
