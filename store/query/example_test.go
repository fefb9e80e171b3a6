package query_test

import (
	"context"
	"fmt"
	"os"

	"github.com/meridian-ops/meridian/store/query"
)

// The course's catalog merge: five sorted sources, merged by a min-heap and
// resolved to one TLE per object.
func ExampleCatalogMerge() {
	var srcs []query.Source
	for _, s := range query.CourseSources {
		srcs = append(srcs, &query.SliceSource{Name: s.Name, Rows: query.Generate(s, 1000, 1), Sorted: true})
	}
	plan := query.CatalogMerge(srcs...)
	n, err := query.Drain(context.Background(), query.Operator[query.Row](plan), nil)
	if err != nil {
		panic(err)
	}
	query.Explain(os.Stdout, plan)
	fmt.Println(n, "objects,", plan.Stats().Conflicts, "conflicts resolved")
	// Output:
	// Resolve group by norad_id: newest epoch, then source priority  rows=1000
	// └─ Merge 5-way min-heap on norad_id  rows=5000
	//    ├─ SeqScan 18th SDS  rows=1000
	//    ├─ SeqScan ESA SST  rows=1000
	//    ├─ SeqScan LeoLabs  rows=1000
	//    ├─ SeqScan ExoAnalytic  rows=1000
	//    └─ SeqScan Numerica  rows=1000
	// 1000 objects, 1000 conflicts resolved
}
