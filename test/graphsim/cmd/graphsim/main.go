// Command graphsim runs the Graph + Entra ID sign-in emulator as its own process, for e2e tests and
// the demo. Its admin surface is under /_sim/ (see package graphsim).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/certops/intune-cert-operator/test/graphsim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "graphsim:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "", "listen address (default 127.0.0.1:0, or the config file's addr)")
	caFile := flag.String("ca-file", "", "write the emulator's CA certificate (PEM) to this file")
	configFile := flag.String("config", "", "JSON or YAML file with tenants, apps, users, limits, faults, pageSize, connectorKeyFile and oidcIssuerCAFile. "+
		"faults (all off by default; also set at run time with POST /_sim/faults): latency, errorRate, errorStatus, throttleRate, retryAfter, dropRate, script, redirectTo (before any effect); "+
		"actThenFailRate, actThenFailStatus (default 504), actThenDropRate, actThenFailScript (a write takes effect, then is answered an error or its connection closed); "+
		"createListLag, deleteListLag, deleteLinger (lists lag behind creates and deletes); patchNoContent (PATCH answers 204); "+
		"recryptionCreateWithoutId (POST /pfxRecryptionRequests answers without id); pascalCaseEnums (enums answered as \"SmimeEncryption\"); seed (reseeds the random fault choice)")
	stateFile := flag.String("state-file", "", "persist records here so a restarted emulator keeps them")
	seed := flag.Int64("seed", 0, "seed for ids and fault choice (overrides the config file's seed when set)")
	issuerCAFile := flag.String("oidc-issuer-ca-file", "", "PEM CA bundle trusted besides the system's when fetching OIDC issuers' keys for federated credentials (overrides the config file's oidcIssuerCAFile)")
	flag.Parse()

	var cfg graphsim.Config
	if *configFile != "" {
		var err error
		if cfg, err = graphsim.LoadConfig(*configFile); err != nil {
			return err
		}
	}
	flag.Visit(func(f *flag.Flag) { // flags given on the command line win over the config file
		switch f.Name {
		case "addr":
			cfg.Addr = *addr
		case "state-file":
			cfg.StateFile = *stateFile
		case "seed":
			cfg.Seed = *seed
		}
	})
	if *issuerCAFile != "" {
		roots, err := graphsim.LoadIssuerRoots(*issuerCAFile)
		if err != nil {
			return err
		}
		cfg.OIDCIssuerRoots = roots
	}

	s, err := graphsim.Start(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = s.Close() }() // the process is ending: nothing is left to do about a failed close
	if *caFile != "" {
		if err := s.WriteCAFile(*caFile); err != nil {
			return err
		}
	}
	fmt.Println("graphsim listening on " + s.URL())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	return nil
}
