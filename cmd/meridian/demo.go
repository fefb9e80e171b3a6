package main

import "github.com/spf13/cobra"

// demoCmd groups the course's acceptance scenarios; each demo file adds
// itself with demoCmd.AddCommand in its init.
var demoCmd = &cobra.Command{
	Use:   "demo",
	Short: "Run a course acceptance scenario against the real components",
	Long: `Each demo runs one capstone's scenario against the real components, prints
the figures the course asks for, and exits non-zero if a criterion fails.`,
}

func init() { rootCmd.AddCommand(demoCmd) }
