package llama

import (
	"fmt"
	"sort"
	"strings"
)

// fileTypes maps quantization names (upper case) to llama_ftype values of
// the pinned release. Types that need an importance matrix (IQ1_*, IQ2_*)
// are left out: Quantize takes none.
var fileTypes = map[string]int{
	"F32":     0,
	"F16":     1,
	"Q4_0":    2,
	"Q4_1":    3,
	"Q8_0":    7,
	"Q5_0":    8,
	"Q5_1":    9,
	"Q2_K":    10,
	"Q3_K_S":  11,
	"Q3_K_M":  12,
	"Q3_K":    12,
	"Q3_K_L":  13,
	"Q4_K_S":  14,
	"Q4_K_M":  15,
	"Q4_K":    15,
	"Q5_K_S":  16,
	"Q5_K_M":  17,
	"Q5_K":    17,
	"Q6_K":    18,
	"IQ3_XXS": 23,
	"IQ4_NL":  25,
	"IQ3_S":   26,
	"IQ3_M":   27,
	"IQ4_XS":  30,
	"BF16":    32,
	"TQ1_0":   36,
	"TQ2_0":   37,
}

// FileTypes returns the quantization type names Quantize accepts, sorted.
func FileTypes() []string {
	out := make([]string, 0, len(fileTypes))
	for k := range fileTypes {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ParseFileType returns the llama_ftype number for a quantization name such
// as "q4_K_M" (case-insensitive), or an error wrapping ErrUnknownFileType.
func ParseFileType(name string) (int, error) {
	if v, ok := fileTypes[strings.ToUpper(strings.TrimSpace(name))]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("%w %q (known: %s)", ErrUnknownFileType, name, strings.Join(FileTypes(), ", "))
}
