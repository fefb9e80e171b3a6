package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/schemas"
)

// maxCodecInput bounds what decode/encode read from stdin.
const maxCodecInput = 16 << 20

var decodeCmd = &cobra.Command{
	Use:   "decode",
	Short: "Print a msgpack bus message from stdin as JSON",
	Long: `Decode reads one msgpack message on stdin and prints it as JSON, e.g.

  nats stream get TLM_INGEST 1 --raw | meridian decode
  nats kv get meridian_stats pipeline --raw | meridian decode`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		in, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxCodecInput))
		if err != nil {
			return err
		}
		out, err := schemas.ToJSON(in)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(cmd.OutOrStdout(), string(out))
		return err
	},
}

var encodeType string

var encodeCmd = &cobra.Command{
	Use:   "encode --type TYPE",
	Short: "Turn a JSON message on stdin into the contract's msgpack (validated)",
	Long: `Encode reads JSON on stdin, validates it as the named message type and
writes its msgpack encoding to stdout, ready for the nats CLI:

  echo '{"id":"c-1","station_id":"gs-1","kind":"SAFE_MODE","issued_at_ns":0}' |
    meridian encode --type command | nats pub cmd.submit.gs-1 --force-stdin

Types: ` + strings.Join(schemas.MessageTypeNames(), ", "),
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		in, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxCodecInput))
		if err != nil {
			return err
		}
		out, err := schemas.FromJSON(encodeType, in)
		if err != nil {
			return err
		}
		_, err = cmd.OutOrStdout().Write(out)
		return err
	},
}

func init() {
	encodeCmd.Flags().StringVar(&encodeType, "type", "", "message type (required)")
	_ = encodeCmd.MarkFlagRequired("type")
	rootCmd.AddCommand(decodeCmd, encodeCmd)
}
