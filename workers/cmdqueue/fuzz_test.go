package cmdqueue_test

import (
	"reflect"
	"testing"

	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/workers/cmdqueue"
)

// FuzzDecodeSubmit feeds arbitrary bytes and subjects to the worker's
// decoder: it must never panic, every error must have a known reason, and
// whatever it accepts is a valid command for that subject's station that
// re-encodes to the same command.
func FuzzDecodeSubmit(f *testing.F) {
	for _, c := range []schemas.Command{
		{ID: "c1", StationID: "gs-1", Kind: schemas.CmdSafeMode, IssuedAtNs: 1},
		{ID: "c2", StationID: "gs-3@10.0.0.7:5012", Kind: schemas.CmdRepoint, Azimuth: f64p(180), Elevation: f64p(45), Priority: intp(120)},
		{ID: "c3", StationID: "gs-1", Kind: schemas.CmdRepoint},
		{ID: "c4", StationID: "gs-1", Kind: "NOPE"},
		{ID: "c5", StationID: "gs-1", Kind: schemas.CmdHousekeeping, Priority: intp(-1)},
	} {
		d, err := schemas.Marshal(&c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(schemas.SubmitSubject(c.StationID), d)
		f.Add("cmd.submit.other", d)
	}
	f.Add("cmd.submit.gs-1", []byte{})
	f.Add("cmd.submit.gs-1", []byte{0xc1})
	f.Add("cmd.submit.gs-1", []byte{0x81, 0xa2, 'i', 'd', 0xcb})
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		c, err := cmdqueue.DecodeSubmit(subject, data)
		if err != nil {
			if r := cmdqueue.Reason(err); r == "other" {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if verr := c.Validate(); verr != nil {
			t.Fatalf("accepted an invalid command: %v", verr)
		}
		if schemas.LastToken(subject) != schemas.Token(c.StationID) {
			t.Fatalf("accepted station %q on %q", c.StationID, subject)
		}
		again, err := schemas.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := cmdqueue.DecodeSubmit(subject, again)
		if err != nil {
			t.Fatalf("re-encoded command rejected: %v", err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the command: %+v vs %+v", c, c2)
		}
	})
}
