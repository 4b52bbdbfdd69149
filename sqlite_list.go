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
	q, pageArgs, filter, args := listQuery(&lp)
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
func listQuery(lp *ListParams) (q string, pageArgs []any, filter string, args []any) {
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
	if len(page) > 0 {
		q += " WHERE " + strings.Join(page, " AND ")
	}
	q += " ORDER BY id " + order + " LIMIT (SELECT ?) OFFSET (SELECT ?)" // see claimQuery
	return q, pageArgs, filter, args
}

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
