package spool

import (
	"context"
	"fmt"
	"strings"
)

// ListTasks pages through tasks by id.
func (s *sqliteStore) ListTasks(ctx context.Context, p *ListParams) (*TaskPage, error) {
	var lp ListParams
	if p != nil {
		lp = *p
	}
	// The engine checks the limit; a direct caller gets the same default
	// and bounds rather than a panic.
	if lp.Limit <= 0 {
		lp.Limit = 20
	}
	lp.Limit = min(lp.Limit, 100)
	index, err := s.listIndex(ctx, &lp)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	q, pageArgs, filter, args := listQuery(&lp, index)
	offset := 0
	if lp.After == "" && lp.Page > 1 {
		offset = (lp.Page - 1) * lp.Limit
	}
	rows, err := s.query(ctx, q, append(pageArgs, lp.Limit+1, offset)...)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	defer rows.Close()
	out := &TaskPage{Tasks: make([]*Task, 0, lp.Limit)}
	for rows.Next() {
		t, err := scanReadable(rows)
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		out.Tasks = append(out.Tasks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	if len(out.Tasks) > lp.Limit {
		out.Tasks = out.Tasks[:lp.Limit]
		out.Next = out.Tasks[lp.Limit-1].ID
	}
	if out.Total, err = s.count(ctx, lp, filter, args); err != nil {
		return nil, err
	}
	return out, nil
}

// listQuery builds a list page's query and its arguments (less the limit
// and offset), and the filter alone with its arguments, for the count.
// index, when set, is the index the page walks (see listIndex).
func listQuery(lp *ListParams, index string) (q string, pageArgs []any, filter string, args []any) {
	var where []string
	// The literals let SQLite use the partial indexes on status, ref and
	// folder: a bound value alone does not imply their conditions.
	status := "status = ? AND status != 'completed'"
	if lp.Status == StatusCompleted {
		status = "status = ?" // not in the index: the walk by id finds them
	}
	for _, f := range []struct{ cond, v string }{{status, string(lp.Status)}, {"kind = ?", lp.Kind},
		{"parent_id = ?", lp.ParentID}, {"ref = ? AND ref != ''", lp.Ref}, {"folder = ? AND folder != ''", lp.Folder}} {
		if f.v != "" {
			where = append(where, f.cond)
			args = append(args, f.v)
		}
	}
	filter = strings.Join(where, " AND ")
	order, cmp := "DESC", "<"
	if lp.Oldest {
		order, cmp = "ASC", ">"
	}
	page := append([]string(nil), where...)
	pageArgs = append([]any(nil), args...)
	if lp.After != "" {
		page = append(page, "id "+cmp+" ?")
		pageArgs = append(pageArgs, lp.After)
	}
	q = "SELECT " + taskCols + " FROM tasks"
	if index != "" {
		q += " INDEXED BY " + index
	}
	if len(page) > 0 {
		q += " WHERE " + strings.Join(page, " AND ")
	}
	q += " ORDER BY id " + order + " LIMIT (SELECT ?) OFFSET (SELECT ?)" // see claimQuery
	return q, pageArgs, filter, args
}

// listIndex chooses the index a page with several filters walks: that of
// the filter with the fewest rows, for the page walks it by id and looks
// each entry's row up until it has a page of matches. SQLite's planner
// cannot tell: its statistics give the average rows per kind, not that a
// kind is rare, and it walked the status index of 31,000 failed tasks for
// a rare kind's few (80 ms for a page, at a million tasks), where the
// kind's 1,000 take a millisecond. The counts are the trigger-kept ones
// for kind and status, and for ref and folder a count of index entries
// that stops at listCountCap; a parent's steps are few by construction. With one filter, or none, the
// planner's choice is the only one.
func (s *sqliteStore) listIndex(ctx context.Context, lp *ListParams) (string, error) {
	type candidate struct {
		index, query string
		arg          any
	}
	var cands []candidate
	if lp.Status != "" && lp.Status != StatusCompleted && lp.Status.Valid() {
		// Completed tasks are not in the status index.
		cands = append(cands, candidate{"tasks_status",
			"SELECT COALESCE(SUM(" + string(lp.Status) + "), 0) FROM kind_counts", nil})
	}
	if lp.Kind != "" {
		cands = append(cands, candidate{"tasks_kind",
			"SELECT COALESCE(SUM(" + strings.Join(countCols, " + ") + "), 0) FROM kind_counts WHERE kind = ?", lp.Kind})
	}
	if lp.ParentID != "" {
		cands = append(cands, candidate{index: "tasks_parent"})
	}
	for _, f := range []struct{ index, cond, v string }{
		{"tasks_ref", "ref = ? AND ref != ''", lp.Ref},
		{"tasks_folder", "folder = ? AND folder != ''", lp.Folder},
	} {
		if f.v != "" {
			cands = append(cands, candidate{f.index, fmt.Sprintf(
				"SELECT count(*) FROM (SELECT 1 FROM tasks INDEXED BY %s WHERE %s LIMIT %d)", f.index, f.cond, listCountCap), f.v})
		}
	}
	if len(cands) < 2 || lp.Status != "" && !lp.Status.Valid() {
		return "", nil
	}
	if lp.ParentID != "" {
		return "tasks_parent", nil // a workflow has at most maxSteps steps: no count needed
	}
	best, fewest := "", -1
	for _, c := range cands {
		var args []any
		if c.arg != nil {
			args = []any{c.arg}
		}
		var n int
		if err := s.queryRow(ctx, c.query, args...).Scan(&n); err != nil {
			return "", err
		}
		if fewest < 0 || n < fewest {
			best, fewest = c.index, n
		}
	}
	return best, nil
}

// listCountCap bounds listIndex's count of a ref's or a folder's
// entries: a walk of the index alone, at most this long.
const listCountCap = 5000

// count totals a list's matches, from the trigger-kept counts when the
// filters allow, so that a page stays cheap over millions of rows.
func (s *sqliteStore) count(ctx context.Context, p ListParams, filter string, args []any) (int, error) {
	var q string
	switch {
	case (p.ParentID != "" || p.Ref != "" || p.Folder != "") && p.CheapTotal:
		return -1, nil // a count would read every match
	case p.ParentID != "" || p.Ref != "" || p.Folder != "":
		q = "SELECT COUNT(*) FROM tasks"
		if filter != "" {
			q += " WHERE " + filter
		}
	default:
		col := strings.Join(countCols, " + ")
		if p.Status != "" {
			if !p.Status.Valid() {
				return 0, nil
			}
			col = string(p.Status)
		}
		q = "SELECT COALESCE(SUM(" + col + "), 0) FROM kind_counts"
		args = nil
		if p.Kind != "" {
			q += " WHERE kind = ?"
			args = []any{p.Kind}
		}
	}
	var n int
	if err := s.queryRow(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tasks: %w", err)
	}
	return n, nil
}

// countCols are kind_counts' columns, one per status, in statuses' order.
var countCols = func() []string {
	cols := make([]string, len(statuses))
	for i, st := range statuses {
		cols[i] = string(st)
	}
	return cols
}()
