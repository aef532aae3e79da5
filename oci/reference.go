package oci

import (
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// DefaultRegistry is the registry of short names when Naming.Registry is
// empty: Ollama's public registry, so "llama3.2" means what it means to Ollama.
const DefaultRegistry = "registry.ollama.ai"

// DefaultNamespace is the namespace of a one-component short name
// ("llama3.2" → "library/llama3.2") when Naming.Namespace is empty.
const DefaultNamespace = "library"

// DefaultTag is the tag of a reference that names neither a tag nor a digest.
const DefaultTag = "latest"

// Limits of the distribution reference grammar.
const (
	maxNameLength = 255 // registry + "/" + repository
	maxInput      = 1024
)

// The distribution reference grammar (distribution/reference, grammar.go),
// restated for the parts olm needs. Repository components are lowercase.
var (
	pathComponentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagRE           = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	domainNameRE    = regexp.MustCompile(`^(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*$`)
	ipv6RE          = regexp.MustCompile(`^\[[A-Fa-f0-9:]+\]$`)
	portRE          = regexp.MustCompile(`^[0-9]{1,5}$`)
)

// Reference names a model in a registry: registry host, repository, and a tag,
// a digest or both. The zero value is not a valid reference; make one with
// ParseReference or Naming.Parse.
type Reference struct {
	// Registry is the registry host with an optional port, such as
	// "registry.ollama.ai", "ghcr.io" or "localhost:5000"; Parse writes it
	// in lowercase.
	Registry string

	// Repository is the path inside the registry, such as "library/llama3.2"
	// or "org/team/model". It is lowercase.
	Repository string

	// Tag is the tag, such as "latest". It is DefaultTag when the input named
	// neither a tag nor a digest, and empty when it named only a digest.
	Tag string

	// Digest pins the manifest when set. When both Tag and Digest are set, the
	// digest decides what is fetched and the tag is informational.
	Digest digest.Digest
}

// Naming holds the defaults that complete short names. The zero value uses
// DefaultRegistry and DefaultNamespace. A Naming is a plain value, safe for
// concurrent use.
type Naming struct {
	// Registry is the registry of short names; empty means DefaultRegistry.
	// The command line fills it from OLM_DEFAULT_REGISTRY.
	Registry string

	// Namespace is prefixed to a one-component short name; empty means
	// DefaultNamespace ("library").
	Namespace string
}

func (n Naming) registry() string {
	if n.Registry == "" {
		return DefaultRegistry
	}
	return n.Registry
}

func (n Naming) namespace() string {
	if n.Namespace == "" {
		return DefaultNamespace
	}
	return n.Namespace
}

// validate checks the defaults themselves, which come from the environment.
func (n Naming) validate() error {
	if n.Registry != "" {
		if err := validateRegistry(n.Registry); err != nil {
			return fmt.Errorf("%w: default %w (check OLM_DEFAULT_REGISTRY: a host with an optional port, such as localhost:5000)", ErrInvalidReference, err)
		}
	}
	if n.Namespace != "" {
		if err := validateRepository(n.Namespace); err != nil {
			return fmt.Errorf("%w: default namespace: %w", ErrInvalidReference, err)
		}
	}
	return nil
}

// ParseReference parses a model name with the default Naming; see Naming.Parse.
func ParseReference(s string) (Reference, error) {
	return Naming{}.Parse(s)
}

// Parse parses a model name or OCI reference.
//
// If the part before the first "/" contains a "." or ":" or is "localhost",
// s is a full reference: registry/repository[:tag][@sha256:hex], where the
// repository may have any number of components. Otherwise s is a short name
// in the default registry: "model" gets the default namespace
// ("library/model"), "ns/model" and deeper paths are used as they are. A name
// with neither tag nor digest gets the tag "latest". On Docker Hub and
// Ollama's registry a one-component repository gets "library/" as those
// registries do.
//
// Repository components must be lowercase; tags follow [A-Za-z0-9_][A-Za-z0-9_.-]{0,127};
// digests must be sha256 with 64 lowercase hex digits. Errors wrap
// ErrInvalidReference (or ErrInvalidDigest for a bad digest as well).
func (n Naming) Parse(s string) (Reference, error) {
	if s == "" {
		return Reference{}, fmt.Errorf("%w: empty model name", ErrInvalidReference)
	}
	if len(s) > maxInput {
		return Reference{}, fmt.Errorf("%w: name is %d bytes long, the limit is %d", ErrInvalidReference, len(s), maxInput)
	}
	if strings.TrimSpace(s) != s {
		return Reference{}, fmt.Errorf("%w %q: leading or trailing space", ErrInvalidReference, clip(s))
	}

	if err := n.validate(); err != nil {
		return Reference{}, err
	}
	var r Reference
	rest := s

	// Digest: everything after the first "@".
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		d, err := ParseDigest(rest[i+1:])
		if err != nil {
			return Reference{}, fmt.Errorf("%w %q: %w", ErrInvalidReference, clip(s), err)
		}
		r.Digest = d
		rest = rest[:i]
	}

	// Registry: the first segment, when it looks like a host.
	full := false
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		first := rest[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			if err := validateRegistry(first); err != nil {
				return Reference{}, fmt.Errorf("%w %q: %w", ErrInvalidReference, clip(s), err)
			}
			// Host names are case-insensitive: keep one spelling, so that
			// equal references compare equal.
			r.Registry = strings.ToLower(first)
			rest = rest[i+1:]
			full = true
		}
	}

	// Tag: after the last ":" of what remains (a port was taken off above).
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		r.Tag = rest[i+1:]
		rest = rest[:i]
		if !tagRE.MatchString(r.Tag) {
			return Reference{}, fmt.Errorf("%w %q: tag %q must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'", ErrInvalidReference, clip(s), clip(r.Tag))
		}
	}
	if rest == "" {
		return Reference{}, fmt.Errorf("%w %q: missing repository name", ErrInvalidReference, clip(s))
	}
	if err := validateRepository(rest); err != nil {
		return Reference{}, fmt.Errorf("%w %q: %w", ErrInvalidReference, clip(s), err)
	}
	r.Repository = rest

	if !full {
		r.Registry = strings.ToLower(n.registry())
		if !strings.Contains(r.Repository, "/") {
			r.Repository = n.namespace() + "/" + r.Repository
		}
	} else if !strings.Contains(r.Repository, "/") && usesLibrary(r.Registry) {
		r.Repository = DefaultNamespace + "/" + r.Repository
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = DefaultTag
	}
	if l := len(r.Registry) + 1 + len(r.Repository); l > maxNameLength {
		return Reference{}, fmt.Errorf("%w %q: registry and repository are %d characters, the limit is %d", ErrInvalidReference, clip(s), l, maxNameLength)
	}
	return r, nil
}

// usesLibrary reports whether a registry keeps official one-component names
// under "library/", as Docker Hub and Ollama's registry do.
func usesLibrary(registry string) bool {
	switch strings.ToLower(registry) {
	case DefaultRegistry, "docker.io", "index.docker.io", "registry-1.docker.io":
		return true
	}
	return false
}

// validateRegistry checks a host[:port] against the distribution grammar.
func validateRegistry(h string) error {
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return fmt.Errorf("registry %q: unclosed '[' in IPv6 address", h)
		}
		host = h[:end+1]
		rest := h[end+1:]
		if rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return fmt.Errorf("registry %q: unexpected %q after the IPv6 address", h, rest)
			}
			port = p
			if port == "" {
				return fmt.Errorf("registry %q: empty port", h)
			}
		}
		if !ipv6RE.MatchString(host) || net.ParseIP(host[1:len(host)-1]) == nil {
			return fmt.Errorf("registry %q: invalid IPv6 address", h)
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i+1:]
		if port == "" {
			return fmt.Errorf("registry %q: empty port", h)
		}
	}
	if !strings.HasPrefix(host, "[") && !domainNameRE.MatchString(host) {
		return fmt.Errorf("registry %q: %q is not a host name", h, host)
	}
	if port != "" && !portRE.MatchString(port) {
		return fmt.Errorf("registry %q: port %q is not a number", h, port)
	}
	return nil
}

// validateRepository checks a repository path against the distribution grammar.
func validateRepository(repo string) error {
	for _, c := range strings.Split(repo, "/") {
		if c == "" {
			return fmt.Errorf("repository %q has an empty path component", repo)
		}
		if pathComponentRE.MatchString(c) {
			continue
		}
		if pathComponentRE.MatchString(strings.ToLower(c)) {
			return fmt.Errorf("repository %q must be lowercase (try %q)", repo, strings.ToLower(repo))
		}
		return fmt.Errorf("repository component %q must be lowercase letters and digits, separated by '.', '_', '__' or '-'", c)
	}
	return nil
}

// Validate reports whether r, however it was made, is a well-formed full
// reference: a valid registry, repository, and a tag or digest. The error
// wraps ErrInvalidReference.
func (r Reference) Validate() error {
	if r.Registry == "" {
		return fmt.Errorf("%w: missing registry", ErrInvalidReference)
	}
	if err := validateRegistry(r.Registry); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidReference, err)
	}
	if r.Repository == "" {
		return fmt.Errorf("%w: missing repository", ErrInvalidReference)
	}
	if err := validateRepository(r.Repository); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidReference, err)
	}
	if r.Tag == "" && r.Digest == "" {
		return fmt.Errorf("%w: %s has neither tag nor digest", ErrInvalidReference, r.Name())
	}
	if r.Tag != "" && !tagRE.MatchString(r.Tag) {
		return fmt.Errorf("%w: invalid tag %q", ErrInvalidReference, clip(r.Tag))
	}
	if r.Digest != "" {
		if err := ValidateDigest(r.Digest); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidReference, err)
		}
	}
	return nil
}

// Name returns registry/repository, without tag or digest.
func (r Reference) Name() string {
	return r.Registry + "/" + r.Repository
}

// String returns the full reference: registry/repository[:tag][@digest].
// Parsing it again yields r.
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + string(r.Digest)
	}
	return s
}

// TagOrDigest returns what to ask a registry for: the digest when set (it
// pins the content), else the tag.
func (r Reference) TagOrDigest() string {
	if r.Digest != "" {
		return string(r.Digest)
	}
	return r.Tag
}

// Short returns the display form with the default Naming; see Naming.Short.
func (r Reference) Short() string {
	return Naming{}.Short(r)
}

// Short returns the form Ollama shows: "llama3.2:latest" for a model in the
// default namespace of the default registry, "ns/model:tag" for other
// namespaces there, and the full String for other registries. Parsing the
// result with n yields r again.
func (n Naming) Short(r Reference) string {
	if r.Registry != strings.ToLower(n.registry()) {
		return r.String()
	}
	name := r.Repository
	first, _, _ := strings.Cut(name, "/")
	// The first component of a short name must not look like a registry, or
	// parsing it would take it for one; a one-component name would get the
	// default namespace.
	if strings.Contains(name, "/") && !strings.ContainsAny(first, ".:") && first != "localhost" {
		if rest, ok := strings.CutPrefix(name, n.namespace()+"/"); ok && !strings.Contains(rest, "/") {
			name = rest
		}
	} else {
		return r.String()
	}
	if r.Tag != "" {
		name += ":" + r.Tag
	}
	if r.Digest != "" {
		name += "@" + string(r.Digest)
	}
	return name
}

// IsLoopback reports whether the registry is on this machine: "localhost",
// an address in 127.0.0.0/8, or [::1], with any port.
func (r Reference) IsLoopback() bool {
	return IsLoopbackHost(r.Registry)
}

// IsLoopbackHost reports whether host (with an optional port, IPv6 in
// brackets) names this machine: "localhost", 127.0.0.0/8 or ::1.
func IsLoopbackHost(host string) bool {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// AllowPlainHTTP reports whether plain HTTP may be used for r's registry: for
// loopback registries always, for others only when the user asked for it
// (--insecure). A client that is allowed plain HTTP should still prefer TLS
// when the registry offers it (loopback registries may serve TLS, as the
// test registries do). insecure also allows self-signed TLS certificates;
// that decision is the caller's.
func (r Reference) AllowPlainHTTP(insecure bool) bool {
	return insecure || r.IsLoopback()
}
