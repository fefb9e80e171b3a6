package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/store/tle"
	"github.com/meridian-ops/meridian/workers/store"
)

var tleFlags struct {
	asOf      string
	limit     int
	source    string
	wait      bool
	samples   int
	noProgess bool
}

var storeCmd = &cobra.Command{
	Use:   "store",
	Short: "Run the store worker (the OOR engine and the oor service) alone",
	Long: `Store runs the store worker against --nats-url (default the all-in-one's
embedded server at --nats-addr) with its engine under <data-dir>/oor. It is the
only process that may open that directory; a second one is refused.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error { return workerCmd.RunE(cmd, []string{"store"}) }, // = meridian worker store
}

var tleCmd = &cobra.Command{Use: "tle", Short: "Read and import element sets of the Orbital Object Registry"}

// asOfFlag parses --as-of: RFC 3339, or an MVCC timestamp in Unix ns.
func asOfFlag() (*uint64, error) {
	if tleFlags.asOf == "" {
		return nil, nil
	}
	if ns, err := strconv.ParseUint(tleFlags.asOf, 10, 64); err == nil {
		return &ns, nil
	}
	t, err := time.Parse(time.RFC3339Nano, tleFlags.asOf)
	if err != nil {
		return nil, fmt.Errorf("--as-of: want RFC 3339 or Unix nanoseconds: %w", err)
	}
	ns := uint64(t.UnixNano())
	return &ns, nil
}

// withOOR parses --as-of, connects to NATS and runs fn.
func withOOR(name string, fn func(nc *nats.Conn, at *uint64) error) error {
	at, err := asOfFlag()
	if err != nil {
		return err
	}
	nc, err := cmdClientConn(name)
	if err != nil {
		return err
	}
	defer nc.Close()
	return fn(nc, at)
}

// oorRequest sends one request to the oor service and decodes the reply.
func oorRequest(nc *nats.Conn, subject string, req, rep any) error {
	data, err := schemas.Marshal(req)
	if err != nil {
		return err
	}
	m, err := nc.Request(subject, data, 30*time.Second)
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("%s: no store worker is running (start meridian run or meridian store): %w", subject, err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", subject, err)
	}
	if code := m.Header.Get(micro.ErrorCodeHeader); code != "" {
		return fmt.Errorf("%s: %s %s", subject, code, m.Header.Get(micro.ErrorHeader))
	}
	return schemas.Unmarshal(m.Data, rep)
}

var tleGetCmd = &cobra.Command{
	Use:   "get NORAD_ID [--as-of T]",
	Short: "Print an object's resolved element set as JSON (exit 1 if unknown)",
	Args:  cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		id, err := strconv.ParseUint(args[0], 10, 32)
		if err != nil || id == 0 {
			return fmt.Errorf("NORAD id %q: want a positive integer", args[0])
		}
		return withOOR("meridian-tle", func(nc *nats.Conn, at *uint64) error {
			var rep schemas.TleGetReply
			if err := oorRequest(nc, schemas.OORTleGet, &schemas.TleGetRequest{NoradID: uint32(id), AsOf: at}, &rep); err != nil {
				return err
			}
			if !rep.Found {
				return fmt.Errorf("object %d is not in the catalog (as of %d)", id, rep.AsOf)
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(&rep)
		})
	},
}

var tleScanCmd = &cobra.Command{
	Use:   "scan FROM TO [--as-of T] [--limit N]",
	Short: "Print the resolved element sets of NORAD ids FROM..TO as JSON lines",
	Long: `Scan pages through oor.tle.scan at one snapshot (the first page's) and prints
one JSON object per line; --limit stops after N objects (0: all).`,
	Args: cobra.ExactArgs(2),
	RunE: func(cmd *cobra.Command, args []string) error {
		from, err1 := strconv.ParseUint(args[0], 10, 32)
		to, err2 := strconv.ParseUint(args[1], 10, 32)
		if err := errors.Join(err1, err2); err != nil || from > to {
			return fmt.Errorf("want FROM <= TO, both NORAD ids: %v", err)
		}
		return withOOR("meridian-tle", func(nc *nats.Conn, at *uint64) error {
			enc := json.NewEncoder(cmd.OutOrStdout())
			n := 0
			for next := uint32(from); ; {
				req := schemas.TleScanRequest{From: next, To: uint32(to), AsOf: at}
				var rep schemas.TleScanReply
				if err := oorRequest(nc, schemas.OORTleScan, &req, &rep); err != nil {
					return err
				}
				at = &rep.AsOf // later pages read the same snapshot
				for i := range rep.Tles {
					if tleFlags.limit > 0 && n == tleFlags.limit {
						return nil
					}
					if err := enc.Encode(&rep.Tles[i]); err != nil {
						return err
					}
					n++
				}
				if !rep.More || len(rep.Tles) == 0 {
					break
				}
				next = rep.Tles[len(rep.Tles)-1].NoradID + 1
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d objects\n", n)
			return nil
		})
	},
}

var tleImportCmd = &cobra.Command{
	Use:   "import FILE --source S [--wait]",
	Short: "Publish a two-line element file as updates from catalog source S",
	Long: `Import parses FILE (two-line element sets, with or without name lines; "-" is
stdin), publishes each valid set to tle.update.<S> through JetStream and waits
for every publish to be acked by the stream. Bad sets are reported with their
line numbers and skipped; the command then exits non-zero. --wait also waits
until the store worker has committed everything in the TLE stream.`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		ctx, stop := signalContext()
		defer stop()
		var in io.Reader = os.Stdin
		size := int64(-1)
		if args[0] != "-" {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			if st, err := f.Stat(); err == nil {
				size = st.Size()
			}
			in = f
		}
		nc, err := cmdClientConn("meridian-tle-import")
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := bus.NewJetStream(nc)
		if err != nil {
			return err
		}
		bar := progressbar.NewOptions64(size, progressbar.OptionSetWriter(cmd.ErrOrStderr()),
			progressbar.OptionSetDescription("importing "+args[0]), progressbar.OptionShowBytes(true),
			progressbar.OptionSetVisibility(!tleFlags.noProgess), progressbar.OptionClearOnFinish())
		res, err := importTLE(ctx, io.TeeReader(in, bar), js, tleFlags.source, func(pe *tle.ParseError) {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: line %d: %v\n", args[0], pe.Line, pe.Err)
		})
		_ = bar.Finish()
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%d element sets published to %s, %d rejected\n", res.published, schemas.TLESubject(tleFlags.source), res.rejected)
		if tleFlags.wait {
			if err := waitStoreCaughtUp(ctx, js); err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "the store worker has committed them")
		}
		if res.rejected > 0 {
			return fmt.Errorf("%d element sets rejected", res.rejected)
		}
		return nil
	},
}

type importResult struct{ published, rejected int }

// importTLE publishes every valid set of r and reports the bad ones; it
// returns once every publish was acked (or one failed).
func importTLE(ctx context.Context, r io.Reader, js jetstream.JetStream, source string, bad func(*tle.ParseError)) (res importResult, err error) {
	pub := bus.NewPublisher(js, 512, slog.Default())
	errc := make(chan error, 1)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = errors.Join(err, pub.Close(cctx)) // waits for every ack
		select {
		case perr := <-errc:
			err = errors.Join(err, fmt.Errorf("publish: %w", perr))
		default:
		}
	}()
	rd := tle.NewReader(r)
	for {
		set, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *tle.ParseError
		if errors.As(err, &pe) {
			res.rejected++
			bad(pe)
			continue
		}
		if err != nil {
			return res, err
		}
		t := store.FromSet(&set, source)
		if err := t.Validate(); err != nil {
			res.rejected++
			bad(&tle.ParseError{Line: rd.Line(), Err: err})
			continue
		}
		data, err := schemas.Marshal(&t)
		if err != nil {
			return res, err
		}
		// The message id makes a re-run of the same import idempotent
		// within the stream's duplicate window.
		id := fmt.Sprintf("tle:%s:%d:%.8f", source, t.NoradID, t.Epoch)
		if err := pub.PublishAsync(ctx, bus.NewMsg(schemas.TLESubject(source), data, id), func(_ *jetstream.PubAck, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		}); err != nil {
			return res, err
		}
		res.published++
	}
	return res, nil
}

// waitStoreCaughtUp waits until the store consumer has acked the whole TLE
// stream.
func waitStoreCaughtUp(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		s, err := js.Stream(ctx, schemas.StreamTLE)
		if err == nil {
			var si *jetstream.StreamInfo
			if si, err = s.Info(ctx); err == nil {
				var c jetstream.Consumer
				if c, err = s.Consumer(ctx, "store"); err == nil {
					var ci *jetstream.ConsumerInfo
					if ci, err = c.Info(ctx); err == nil && ci.AckFloor.Stream >= si.State.LastSeq && ci.NumAckPending == 0 {
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the store worker to commit the TLE stream: %w (last: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

var catalogCmd = &cobra.Command{Use: "catalog", Short: "Operate on the merged catalog"}

var catalogMergeCmd = &cobra.Command{
	Use:   "merge [--as-of T] [--samples N]",
	Short: "Run the k-way catalog merge across the five sources and print its outcome",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		return withOOR("meridian-catalog", func(nc *nats.Conn, at *uint64) error {
			var rep schemas.CatalogMergeReply
			if err := oorRequest(nc, schemas.OORCatalogMerge, &schemas.CatalogMergeRequest{AsOf: at, Samples: tleFlags.samples}, &rep); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "catalog merge as of %s: %d rows in, %d objects, %d conflicts resolved, %d µs\n",
				time.Unix(0, int64(rep.AsOf)).UTC().Format(time.RFC3339Nano), rep.RowsIn, rep.Objects, rep.Conflicts, rep.ElapsedUs)
			for src, n := range rep.BySource {
				fmt.Fprintf(out, "  %-12s won %d\n", src, n)
			}
			for _, s := range rep.Samples {
				fmt.Fprintf(out, "  NORAD %-6d epoch %.8f from %-12s (%d candidates)\n", s.NoradID, s.Epoch, s.WinnerSource, s.Candidates)
			}
			return nil
		})
	},
}

func init() {
	storeCmd.Flags().StringVar(&workerHTTPAddr, "http-addr", "127.0.0.1:0", "ops HTTP address for /metrics and probes (port 0 picks one)")
	for _, c := range []*cobra.Command{tleGetCmd, tleScanCmd, catalogMergeCmd} {
		c.Flags().StringVar(&tleFlags.asOf, "as-of", "", "read at this time (RFC 3339) or MVCC timestamp (Unix ns)")
	}
	tleScanCmd.Flags().IntVar(&tleFlags.limit, "limit", 0, "stop after N objects (0: all)")
	tleImportCmd.Flags().StringVar(&tleFlags.source, "source", "", "catalog source publishing the file (e.g. 18th-sds)")
	tleImportCmd.Flags().BoolVar(&tleFlags.wait, "wait", false, "wait until the store worker has committed the updates")
	tleImportCmd.Flags().BoolVar(&tleFlags.noProgess, "no-progress", false, "hide the progress bar")
	_ = tleImportCmd.MarkFlagRequired("source")
	catalogMergeCmd.Flags().IntVar(&tleFlags.samples, "samples", 10, "winners to print as examples")
	tleCmd.AddCommand(tleGetCmd, tleScanCmd, tleImportCmd)
	catalogCmd.AddCommand(catalogMergeCmd)
	rootCmd.AddCommand(storeCmd, tleCmd, catalogCmd)
}
