// Package convert turns a Hugging Face checkpoint directory (config.json,
// *.safetensors, tokenizer.json and/or tokenizer.model,
// tokenizer_config.json) into a GGUF file that llama.cpp loads, in pure Go.
//
// Supported architectures (config.json "architectures"): LlamaForCausalLM
// and MistralForCausalLM (GGUF "llama", with the q/k row permutation
// llama.cpp expects), Qwen2ForCausalLM ("qwen2"), Qwen3ForCausalLM
// ("qwen3"), Gemma2ForCausalLM ("gemma2"), Gemma3ForCausalLM and the text
// part of Gemma3ForConditionalGeneration ("gemma3"), Phi3ForCausalLM
// ("phi3") and BertModel ("bert", for embeddings). Tensors of dtype F32, F16
// and BF16 are read; others are refused with an error naming them.
//
// Tokenizers: SentencePiece from tokenizer.model (parsed from its protobuf
// by hand), byte-level BPE and WordPiece from tokenizer.json, added and
// special tokens from tokenizer.json and tokenizer_config.json, special
// token ids from config.json, and the chat template from
// tokenizer_config.json or chat_template.jinja.
//
// Conversion streams: tensors are read from the safetensors files in order,
// a chunk at a time, and written through gguf.Writer, so memory use does not
// grow with the model. Matrices are written as F16 or BF16 (Options.DType),
// norms, biases and other 1-D tensors as F32, as llama.cpp's own converter
// does.
package convert
