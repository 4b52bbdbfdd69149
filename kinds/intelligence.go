package kinds

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/spoolrun/spool"
)

// storeIntelligence stores v, the result of an intelligence kind (speech,
// chapters, description, outline, prompt, nsfw), as the task's output
// File: object "intelligence", kind the task's kind, type
// application/json, v's JSON as its content, so that a workflow's next
// step gets it as its input. The task's output is then v itself with the
// File's id, object "intelligence" and kind added (as the hosted API shows
// it), not a bare reference to the File. v must encode as a JSON object;
// its own id, object and kind, if any, are replaced.
func storeIntelligence(ctx context.Context, job *spool.Job, kind string, v any) (*spool.File, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, spool.Permanent(fmt.Errorf("encode %s result: %w", kind, err))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || fields == nil {
		return nil, spool.Permanent(fmt.Errorf("encode %s result: not a JSON object", kind))
	}
	delete(fields, "id")
	fields["object"] = mustRaw("intelligence")
	fields["kind"] = mustRaw(kind)
	content, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("encode %s result: %w", kind, err)
	}
	f, err := job.CreateFile(ctx, bytes.NewReader(content), &spool.File{Object: "intelligence", Kind: kind,
		Type: "application/json", Filename: outputName(job, "json")})
	if err != nil {
		return nil, err
	}
	// Object and kind are the File's again: CreateFile's probe must not
	// have made them anything else.
	f.Object, f.Kind = "intelligence", kind
	if err := job.SetOutput(withID(f.ID, fields)); err != nil {
		return nil, err
	}
	return f, nil
}

// withID encodes fields as one JSON object that starts with id, object
// and kind, as the API shows a File, and has the other fields after, in
// name order.
func withID(id string, fields map[string]json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"id":%s,"object":%s,"kind":%s`, mustRaw(id), fields["object"], fields["kind"])
	names := make([]string, 0, len(fields))
	for k := range fields {
		if k != "object" && k != "kind" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		fmt.Fprintf(&b, ",%s:%s", mustRaw(k), fields[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

func mustRaw(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
