//go:build cgo && cuda

package llama

// With `-tags cuda` the binding links llama.cpp's CUDA backend. Build
// llama.cpp first with OLM_CUDA=1 scripts/llama-cpp.sh (it links
// runtime/llama/llama.cpp to the -cuda build, whose libggml.a registers the
// CUDA backend and so needs libggml-cuda.a and the CUDA runtime). The static
// libraries are listed again after ggml-cuda because the linker resolves
// static archives left to right. CUDA_PATH defaults to /usr/local/cuda; set
// CGO_LDFLAGS=-L<cuda>/lib64 for another location.
//
// Not exercised by CI (no GPU there): it follows llama.cpp's own CMake
// link line for GGML_CUDA=ON with BUILD_SHARED_LIBS=OFF.

/*
#cgo LDFLAGS: -L${SRCDIR}/llama.cpp/lib -lggml-cuda -lggml -lggml-base -L/usr/local/cuda/lib64 -L/usr/local/cuda/lib64/stubs -lcudart -lcublas -lcublasLt -lcuda -lstdc++ -ldl -lrt
*/
import "C"
