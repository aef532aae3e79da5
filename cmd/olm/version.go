package main

import "fmt"

// VersionCmd prints olm's version.
type VersionCmd struct{}

// Run prints the version.
func (VersionCmd) Run() error {
	fmt.Println("olm version", version)
	return nil
}
