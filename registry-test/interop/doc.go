// Package interop checks that what package oci writes and reads agrees with
// real third-party tools against a real registry: oras pushes ModelPack
// artifacts that oci.ParseModel reads, olm-built manifests of every format
// survive crane and oras unchanged, and oras pull writes the GGUF out under
// its file name. The tests start registries with registry-test/regtest.
package interop
