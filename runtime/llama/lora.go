//go:build cgo

package llama

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"
)

// LoRA is a LoRA adapter (a Modelfile ADAPTER) loaded for a Model. Apply it
// to a Context with SetLoRA.
type LoRA struct {
	closer
	m    *Model
	p    *C.struct_llama_adapter_lora
	path string
}

// LoadLoRA loads the GGUF LoRA adapter at path for m. An adapter made for
// another architecture or shape gives an error wrapping ErrLoad.
func (m *Model) LoadLoRA(path string) (*LoRA, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: adapter: %w", ErrLoad, err)
	}
	if err := m.acquire(); err != nil {
		return nil, err
	}
	cp := cstr(path)
	defer free(cp)
	lastError()
	p := C.llama_adapter_lora_init(m.p, cp)
	if p == nil {
		m.release()
		return nil, fmt.Errorf("%w: adapter %s: %s", ErrLoad, path, orDefault(lastError(), "llama.cpp could not load it"))
	}
	l := &LoRA{m: m, p: p, path: path}
	runtime.SetFinalizer(l, (*LoRA).Close)
	return l, nil
}

// Close frees the adapter; contexts it is applied to must not decode
// afterwards (apply SetLoRA(nil, nil) first). It is idempotent.
func (l *LoRA) Close() error {
	if l == nil || !l.markClosed() {
		return nil
	}
	runtime.SetFinalizer(l, nil)
	C.llama_adapter_lora_free(l.p)
	l.p = nil
	l.m.release()
	return nil
}

// SetLoRA applies adapters with their scales (scales[i] for adapters[i]; a
// missing scale is 1) to the context, replacing any applied before.
// SetLoRA(nil, nil) removes them.
func (c *Context) SetLoRA(adapters []*LoRA, scales []float32) error {
	if !c.ok() {
		return ErrClosed
	}
	n := len(adapters)
	if n == 0 {
		C.llama_set_adapters_lora(c.p, nil, 0, nil)
		return nil
	}
	ptrs := (*[1 << 16]*C.struct_llama_adapter_lora)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof((*C.struct_llama_adapter_lora)(nil)))))[:n:n]
	defer C.free(unsafe.Pointer(&ptrs[0]))
	sc := (*[1 << 16]C.float)(C.malloc(C.size_t(n) * 4))[:n:n]
	defer C.free(unsafe.Pointer(&sc[0]))
	for i, a := range adapters {
		if a == nil || a.p == nil {
			return fmt.Errorf("%w: adapter %d", ErrClosed, i)
		}
		if a.m != c.m {
			return fmt.Errorf("%w: adapter %s was loaded for another model", ErrLoad, a.path)
		}
		ptrs[i] = a.p
		sc[i] = 1
		if i < len(scales) {
			sc[i] = C.float(scales[i])
		}
	}
	if rc := C.llama_set_adapters_lora(c.p, &ptrs[0], C.size_t(n), &sc[0]); rc != 0 {
		return fmt.Errorf("%w: llama_set_adapters_lora returned %d: %s", ErrContext, int(rc), lastError())
	}
	return nil
}
