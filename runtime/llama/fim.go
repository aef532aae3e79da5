//go:build cgo

package llama

/*
#include "shim.h"
*/
import "C"

// FIMPrefix returns the fill-in-the-middle prefix token (llama.cpp's
// llama_vocab_fim_pre: <|fim_prefix|>, <PRE>, <fim-prefix>, …), or TokenNull
// when the vocabulary has none.
func (m *Model) FIMPrefix() Token {
	return m.special(func(v *C.struct_llama_vocab) C.llama_token { return C.llama_vocab_fim_pre(v) })
}

// FIMSuffix returns the fill-in-the-middle suffix token
// (llama_vocab_fim_suf), or TokenNull.
func (m *Model) FIMSuffix() Token {
	return m.special(func(v *C.struct_llama_vocab) C.llama_token { return C.llama_vocab_fim_suf(v) })
}

// FIMMiddle returns the fill-in-the-middle middle token
// (llama_vocab_fim_mid), after which the model writes the missing text, or
// TokenNull.
func (m *Model) FIMMiddle() Token {
	return m.special(func(v *C.struct_llama_vocab) C.llama_token { return C.llama_vocab_fim_mid(v) })
}
