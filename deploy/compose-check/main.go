// compose-check: `docker compose config` for machines without Docker. Loads a Compose file
// with compose-go (the library the Docker Compose CLI is built on): the Compose
// Specification's JSON schema, interpolation (`${VAR:?message}` fails when VAR is unset),
// merge keys, profiles and depends_on checks. Prints the resolved project as JSON on stdout,
// or the loader's error on stderr with exit status 1.
//
//	compose-check -f docker-compose.yml [-env-file FILE] [-profile NAME]... 
//
// The environment is only what -env-file gives (KEY=VALUE lines), never the caller's, so a
// check does not depend on who runs it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

type profiles []string

func (p *profiles) String() string     { return strings.Join(*p, ",") }
func (p *profiles) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	file := flag.String("f", "docker-compose.yml", "the Compose file")
	envFile := flag.String("env-file", "", "KEY=VALUE lines: the only variables interpolation sees")
	var active profiles
	flag.Var(&active, "profile", "a profile to enable (repeatable)")
	flag.Parse()
	if err := run(*file, *envFile, active); err != nil {
		fmt.Fprintf(os.Stderr, "compose-check: %v\n", err)
		os.Exit(1)
	}
}

func run(file, envFile string, active []string) error {
	env := map[string]string{}
	if envFile != "" {
		text, err := os.ReadFile(envFile)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(text), "\n") {
			if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return fmt.Errorf("%s: not KEY=VALUE: %q", envFile, line)
			}
			env[k] = v
		}
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	content, err := os.ReadFile(abs)
	if err != nil {
		return err
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs, Content: content}},
		Environment: env,
	}
	project, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("doorstep", true)
		o.Profiles = active
		o.SkipResolveEnvironment = false
	})
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(project, "", "  ")
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(out, '\n'))
	return err
}
