package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/oci/transfer"
)

// LoginCmd stores registry credentials in the Docker config file
// ($DOCKER_CONFIG/config.json or ~/.docker/config.json), or in the
// credential helper it names, after checking them against the registry.
type LoginCmd struct {
	Registry      string `arg:"" help:"Registry host[:port], such as ghcr.io or localhost:5000."`
	Username      string `short:"u" name:"username" env:"OLM_REGISTRY_USER" help:"User name."`
	Password      string `short:"p" name:"password" help:"Password or token (prefer --password-stdin)."`
	PasswordStdin bool   `name:"password-stdin" help:"Read the password or token from stdin."`
	Insecure      bool   `name:"insecure" help:"Allow plain HTTP and self-signed TLS."`
}

// Run logs in.
func (c *LoginCmd) Run(ctx context.Context) error {
	host, err := registryHost(c.Registry)
	if err != nil {
		return err
	}
	pass := c.Password
	if c.PasswordStdin {
		if c.Password != "" {
			return exitError{exitUsage, errors.New("--password and --password-stdin are mutually exclusive")}
		}
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		if err != nil {
			return err
		}
		pass = strings.TrimRight(string(b), "\r\n")
	}
	user := c.Username
	if user == "" || pass == "" {
		if !term.IsTerminal(int(os.Stdin.Fd())) {
			return exitError{exitUsage, errors.New("give --username and --password-stdin (no terminal to prompt on)")}
		}
		in := bufio.NewReader(os.Stdin)
		if user == "" {
			fmt.Fprint(os.Stderr, "Username: ")
			l, _ := in.ReadString('\n')
			user = strings.TrimSpace(l)
		}
		if pass == "" {
			fmt.Fprint(os.Stderr, "Password: ")
			b, err := term.ReadPassword(int(os.Stdin.Fd()))
			fmt.Fprintln(os.Stderr)
			if err != nil {
				return err
			}
			pass = string(b)
		}
	}
	opts, err := registryOptions(c.Insecure)
	if err != nil {
		return err
	}
	if err := transfer.Login(ctx, host, auth.Credential{Username: user, Password: pass}, opts.Credentials, opts); err != nil {
		return classify(ctx, err)
	}
	fmt.Println("Login Succeeded")
	return nil
}

// LogoutCmd removes stored registry credentials.
type LogoutCmd struct {
	Registry string `arg:"" help:"Registry host[:port]."`
}

// Run logs out.
func (c *LogoutCmd) Run(ctx context.Context) error {
	host, err := registryHost(c.Registry)
	if err != nil {
		return err
	}
	opts, err := registryOptions(false)
	if err != nil {
		return err
	}
	if err := transfer.Logout(ctx, host, opts.Credentials); err != nil {
		return err
	}
	fmt.Printf("Removed login credentials for %s\n", host)
	return nil
}

// registryHost checks a registry host argument.
func registryHost(s string) (string, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://"), "/")
	if _, err := oci.ParseReference(s + "/x/y:z"); err != nil || strings.Contains(s, "/") {
		return "", exitError{exitUsage, fmt.Errorf("%q is not a registry host[:port]", s)}
	}
	return s, nil
}
