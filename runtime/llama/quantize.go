//go:build cgo

package llama

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Quantize writes a quantized copy of the GGUF model in to out, with the
// type p.FileType (see FileTypes). An unknown type gives
// ErrUnknownFileType; a model already quantized (not F32/F16/BF16 weights)
// gives ErrAlreadyQuantized unless p.AllowRequantize. The output is written
// to a temporary file beside out and renamed into place only when complete.
// ctx is checked before the work starts: llama.cpp's quantizer cannot be
// interrupted, so callers that need cancellation run it in a subprocess.
func Quantize(ctx context.Context, in, out string, p QuantizeParams) error {
	ftype, err := ParseFileType(p.FileType)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrQuantize, err)
	}
	if _, err := os.Stat(in); err != nil {
		return fmt.Errorf("%w: %w", ErrQuantize, err)
	}
	if !p.AllowRequantize {
		m, err := LoadModel(ctx, in, ModelParams{UseMMap: true, VocabOnly: true})
		if err != nil {
			return fmt.Errorf("%w: %w", ErrQuantize, err)
		}
		ft, ok := m.Meta("general.file_type")
		m.Close()
		switch ft {
		case "0", "1", "32": // F32, F16, BF16
		default:
			if ok {
				return fmt.Errorf("%w: %s has file type %s; quantize from an F32, F16 or BF16 model", ErrAlreadyQuantized, in, fileTypeName(ft))
			}
			// no general.file_type: llama.cpp checks the tensors below
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrQuantize, err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName)

	initBackend()
	qp := C.llama_model_quantize_default_params()
	qp.nthread = C.int32_t(max(p.Threads, 0))
	qp.ftype = C.enum_llama_ftype(ftype)
	qp.allow_requantize = C.bool(p.AllowRequantize)
	cin, cout := cstr(in), cstr(tmpName)
	defer free(cin)
	defer free(cout)
	var cerr *C.char
	lastError()
	if C.olm_quantize(cin, cout, &qp, &cerr) != 0 {
		err := takeErr(ErrQuantize, cerr)
		if strings.Contains(err.Error(), "requantizing from type") {
			return fmt.Errorf("%w: %w", ErrAlreadyQuantized, err)
		}
		return err
	}
	// verify: the result must load
	m, err := LoadModel(ctx, tmpName, ModelParams{UseMMap: true, VocabOnly: true})
	if err != nil {
		return fmt.Errorf("%w: the result does not load: %w", ErrQuantize, err)
	}
	m.Close()
	if err := os.Chmod(tmpName, 0o644); err != nil {
		return fmt.Errorf("%w: %w", ErrQuantize, err)
	}
	if err := os.Rename(tmpName, out); err != nil {
		return fmt.Errorf("%w: %w", ErrQuantize, err)
	}
	return nil
}

// fileTypeName names a general.file_type value ("7" → "Q8_0").
func fileTypeName(v string) string {
	n, err := strconv.Atoi(v)
	if err != nil {
		return v
	}
	return C.GoString(C.llama_ftype_name(C.enum_llama_ftype(n)))
}
