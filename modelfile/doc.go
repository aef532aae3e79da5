// Package modelfile parses and formats Modelfiles, the build recipe of a
// model, in the language Ollama defined:
//
//	# comments start a line with '#'
//	FROM ./weights.gguf               model name, registry reference, GGUF file or safetensors folder
//	FROM ./mmproj.gguf                a second FROM adds a projector (vision models)
//	PARAMETER temperature 0.7         typed options; see Parameters
//	PARAMETER stop "<|eot_id|>"       stop may repeat
//	TEMPLATE """{{ .Prompt }}"""      prompt template
//	SYSTEM "You are helpful."         system prompt
//	ADAPTER ./lora.gguf               LoRA adapter
//	LICENSE """MIT ..."""             repeatable
//	MESSAGE user Hello                conversation seed; role is system, user or assistant
//	REQUIRES 0.5.0                    minimum runtime version (semantic version)
//
// Instructions are case-insensitive. A value is the rest of the line
// (trimmed), or a "double-quoted" or """triple-quoted""" string that may span
// lines. Quoted strings have no escapes: a double-quoted string ends at the
// next '"', a triple-quoted one at the first run of three or more quotes
// (the last three of the run close it, so the value may end in quotes).
// Windows line endings and a UTF-8 byte-order mark are accepted.
//
// Parse reports the first problem as an *Error carrying the line and column
// and wrapping one of the sentinel errors in errors.go, so callers test it
// with errors.Is. Format prints a Modelfile that parses back to the same
// commands; Format(Parse(x)) is a fixed point.
//
// The package is pure: it reads nothing but the text it is given, and
// resolving FROM and ADAPTER paths (relative to the Modelfile's folder) is
// plain string work done by ResolvePath.
package modelfile
