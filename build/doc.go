// Package build turns a Modelfile into a model in the local store: the one
// builder behind `olm create`, `olm build` and the server's /api/create.
//
// A Builder resolves every FROM (a GGUF file, a folder of GGUF parts or of
// safetensors, a model in the store, or a registry reference it pulls),
// checks everything it can before writing anything, then converts
// (safetensors → GGUF, through a Converter), quantizes (through a
// quantize.Quantizer worker), imports files into the store by linking them
// (hashing each once), writes the Modelfile layers with Ollama's media types
// (template, system, params, messages, license, adapter, projector), fills
// the config from the GGUF header, writes the manifest in the requested
// format (oci.BuildManifest) and finally tags it. Status events like
// Ollama's ("parsing modelfile", "parsing GGUF", "using existing layer
// sha256:…", "creating new layer sha256:…", "writing manifest", "success")
// stream to a callback.
//
// Builds are reproducible: the same inputs give the same manifest digest,
// because the creation time is fixed (oci.ReproducibleTime) unless the
// request sets one, and every layer and config is written deterministically.
//
// Bad input (no FROM, an unknown or mistyped parameter, a missing path, a
// file that is not GGUF or whose tensors run past its end, an already
// quantized model to quantize) is reported before anything is written: no
// blob, no tag. A failure after writing starts leaves at most unreferenced
// blobs, which the store's garbage collection removes; a tag is written only
// after every blob of the manifest is stored.
//
// Show reads a stored model back: its details from the GGUF header and a
// Modelfile (FROM the model itself) that rebuilds the same manifest.
package build
