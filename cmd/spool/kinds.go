package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spoolrun/spool"
)

const kindsUsage = `Usage: spool kinds [flags] [KIND]

Lists the task kinds, whether they can run and why not; with KIND, that
kind's options (the names "spool run" and the create call take).

Without --server, SPOOL_URL, --db or SPOOL_DB it describes this machine:
what "spool run" and "spool serve" here can run. With --server, what that
server can run (its GET /tasks-config).
`

// kinds is "spool kinds".
func (c *cli) kinds(ctx context.Context, args []string) error {
	fs := c.newFlagSet("kinds", kindsUsage)
	t := c.targetFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON: the kinds with their specs")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("unexpected argument %q", pos[1])
	}
	b, err := c.open(ctx, fs, t, true)
	if err != nil {
		return err
	}
	defer b.close()
	ks, err := b.kinds(ctx)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		for _, k := range ks {
			if k.Kind == pos[0] {
				return c.kindDetail(k, *asJSON)
			}
		}
		return usagef("unknown kind %q", pos[0])
	}
	if *asJSON {
		return printJSON(c.stdout, ks)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tRUNS\tWHY NOT")
	for _, k := range ks {
		runs := "yes"
		if !k.Available {
			runs = "no"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Kind, runs, k.Reason)
	}
	return tw.Flush()
}

// kindDetail prints one kind with its options.
func (c *cli) kindDetail(k spool.KindInfo, asJSON bool) error {
	if asJSON {
		return printJSON(c.stdout, k)
	}
	fmt.Fprintf(c.stdout, "%s", k.Kind)
	if k.Spec != nil && k.Spec.Description != "" {
		fmt.Fprintf(c.stdout, ": %s", k.Spec.Description)
	}
	fmt.Fprintln(c.stdout)
	if !k.Available {
		fmt.Fprintf(c.stdout, "cannot run: %s\n", k.Reason)
	}
	if k.Spec == nil {
		return nil
	}
	fmt.Fprintf(c.stdout, "input: %s\n\n", k.Spec.Input)
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OPTION\tTYPE\tDEFAULT\tALLOWED\tDESCRIPTION")
	// Cut to fit a terminal's line; whole for a pipe or a file, which a
	// reader searches or pages (the first line only, the table's rows
	// being lines).
	width := 70
	if !isTerminal(c.stdout) {
		width = 1 << 20
	}
	for _, o := range k.Spec.Options {
		def := ""
		if o.Default != nil {
			b, _ := json.Marshal(o.Default)
			def = string(b)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Name, o.Type, def, allowed(o), oneLine(o.Description, width))
	}
	return tw.Flush()
}

// allowed describes an option's values: its enum or its range.
func allowed(o spool.OptionSpec) string {
	if len(o.Enum) > 0 {
		return strings.Join(o.Enum, "|")
	}
	num := func(p *float64) string { return strconv.FormatFloat(*p, 'g', -1, 64) }
	var s string
	switch {
	case o.Min != nil && o.Max != nil:
		s = num(o.Min) + "–" + num(o.Max)
	case o.Min != nil:
		s = "≥ " + num(o.Min)
	case o.Max != nil:
		s = "≤ " + num(o.Max)
	}
	if o.Percent {
		s += " or 1%–100%"
	}
	return strings.TrimPrefix(s, " or ")
}
