// Package cli tests olm's model commands (pull, push, cp, rm, ls, tag,
// login, logout, inspect, save, load) end to end: the olm binary against the
// real distribution registry (plain HTTP, and TLS with htpasswd or bearer
// tokens), with the oras and crane CLIs reading and writing the same
// artifacts, and a fault-injecting proxy for dropped connections, corrupt
// blobs, lying sizes and hostile digests.
package cli
