package oci_test

import (
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/olmhq/olm/oci"
)

func ExampleBuildManifest() {
	weights := []byte("GGUF…") // the bytes of model.gguf, stored elsewhere
	m := oci.Model{
		Config:  oci.Config{Architecture: "llama", ParamSize: "8B", Quantization: "Q4_K_M"},
		Weights: []oci.Layer{{Digest: digest.FromBytes(weights), Size: int64(len(weights)), Filename: "model.gguf"}},
	}
	manifest, config, err := oci.BuildManifest(m, oci.FormatModelPack, oci.BuildOptions{Created: oci.ReproducibleTime})
	if err != nil {
		fmt.Println(err)
		return
	}
	f, _ := oci.DetectFormat(manifest, oci.FormatModelPack.ManifestMediaType())
	// With a fixed creation time the build is reproducible: the same
	// inputs always give the same manifest digest.
	fmt.Println(f, len(config))
	fmt.Println(digest.FromBytes(manifest))
	// Output:
	// modelpack 256
	// sha256:4c1e9c672528f730d37cf7628ea5c0c2cd85e402293caaf8b8af377c64cfee16
}
