package build

import "github.com/olmhq/olm/internal/gguf"

// SetUnpackHooks sets the hooks tests use to order concurrent unpackings:
// unpack runs right before an unpacking starts (its lock held), lockWait
// when a caller finds the lock held and starts to wait. nil clears a hook.
// Not safe while an unpacking runs.
func SetUnpackHooks(unpack, lockWait func()) {
	testHookUnpack, testHookLockWait = unpack, lockWait
}

// CapabilitiesOf returns the capabilities the GGUF header f gives a model
// without a projector or templates.
func CapabilitiesOf(f *gguf.File) []string { return capabilities(f, false) }
