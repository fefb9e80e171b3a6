package main

import (
	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/ops/demo"
)

func init() {
	demoCmd.AddCommand(&cobra.Command{Use: "query", Short: "Orbital Catalog Merge: 5 sources × 100,000 TLEs through the query operators",
		Args: cobra.NoArgs, RunE: demoRunner(demo.Query)})
}
