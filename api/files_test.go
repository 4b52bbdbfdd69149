package api_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/api"
)

// TestFiles is acceptance 4: an upload, its content with Range and ETag,
// and a task on its file_id.
func TestFiles(t *testing.T) {
	v := newEnv(t, nil)
	img := pngBytes(t, 40, 30)
	f := v.upload("in.png", img)
	id := f["id"].(string)
	if f["kind"] != "image" || f["width"] != 40.0 || f["height"] != 30.0 || f["type"] != "image/png" ||
		f["filename"] != "in.png" || f["folder"] != "in" || f["created_by"] != "tester" {
		t.Errorf("uploaded file = %v", f)
	}
	if f["url"] != v.srv.URL+"/files/"+id+"/content" {
		t.Errorf("url = %v", f["url"])
	}

	res, b := v.do("GET", "/files/"+id+"/content", nil)
	etag := res.Header.Get("ETag")
	if res.StatusCode != 200 || !bytes.Equal(b, img) || etag == "" || res.Header.Get("Content-Type") != "image/png" ||
		res.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("content: %d, %d bytes, ETag %q, headers %v", res.StatusCode, len(b), etag, res.Header)
	}
	res, b = v.do("GET", "/files/"+id+"/content", nil, "Range", "bytes=1-3")
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(b, img[1:4]) ||
		res.Header.Get("Content-Range") != "bytes 1-3/"+itoa(len(img)) {
		t.Errorf("range: %d %q %q", res.StatusCode, b, res.Header.Get("Content-Range"))
	}
	res, b = v.do("GET", "/files/"+id+"/content", nil, "If-None-Match", etag)
	if res.StatusCode != http.StatusNotModified || len(b) != 0 {
		t.Errorf("If-None-Match: %d", res.StatusCode)
	}
	res, _ = v.do("GET", "/files/"+id+"/content", nil, "Range", "bytes=1-3", "If-Range", `"other"`)
	if res.StatusCode != 200 {
		t.Errorf("If-Range with another ETag: %d, want the whole file", res.StatusCode)
	}

	res, b = v.do("GET", "/files/"+id, nil)
	if got := decode[map[string]any](t, b); res.StatusCode != 200 || got["id"] != id {
		t.Errorf("GET /files/%s: %d %s", id, res.StatusCode, b)
	}
	res, b = v.do("GET", "/files?folder=in", nil)
	if list := decode[[]map[string]any](t, b); res.StatusCode != 200 || len(list) != 1 || list[0]["id"] != id ||
		res.Header.Get("Link") == "" {
		t.Errorf("GET /files: %d %s", res.StatusCode, b)
	}

	res, b = v.do("POST", "/tasks", `{"kind": "image", "file_id": "`+id+`", "width": 20, "format": "jpeg"}`)
	if res.StatusCode != 201 {
		t.Fatalf("create on the upload: %d %s", res.StatusCode, b)
	}
	done := v.waitTask(decode[map[string]any](t, b)["id"].(string))
	out, _ := done["output"].(map[string]any)
	if done["status"] != "completed" || out["width"] != 20.0 || out["type"] != "image/jpeg" {
		t.Fatalf("task on the upload: %v", done)
	}

	// A multipart upload, with its fields before the file.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("ref", "poster")
	fw, _ := mw.CreateFormFile("file", "poster.png")
	_, _ = fw.Write(img)
	_ = mw.Close()
	res, b = v.do("POST", "/files", body.Bytes(), "Content-Type", mw.FormDataContentType())
	mf := decode[map[string]any](t, b)
	if res.StatusCode != 201 || mf["filename"] != "poster.png" || mf["ref"] != "poster" || mf["kind"] != "image" {
		t.Fatalf("multipart upload: %d %s", res.StatusCode, b)
	}

	if res, b = v.do("DELETE", "/files/"+mf["id"].(string), nil); res.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", res.StatusCode, b)
	}
	if res, _ = v.do("GET", "/files/"+mf["id"].(string)+"/content", nil); res.StatusCode != 404 {
		t.Errorf("content after delete: %d", res.StatusCode)
	}
}

// TestUploadLimit: an upload over MaxUploadSize is 413 and stores nothing.
func TestUploadLimit(t *testing.T) {
	v := newEnv(t, nil)
	v.srv.Config.Handler = apiHandler(v, func(o *apiOptions) { o.MaxUploadSize = 100 })
	res, b := v.do("POST", "/files?filename=big.png", pngBytes(t, 64, 64), "Content-Type", "image/png")
	if res.StatusCode != http.StatusRequestEntityTooLarge || decode[errBody](t, b).Error.Kind != "request_too_large" {
		t.Fatalf("upload over the limit: %d %s", res.StatusCode, b)
	}
	// Without a Content-Length, the limit cuts the stream.
	req, _ := http.NewRequest("POST", v.srv.URL+"/files", struct{ *bytes.Reader }{bytes.NewReader(pngBytes(t, 64, 64))})
	req.Header.Set("Authorization", "Bearer "+testToken)
	r2, err := v.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked upload over the limit: %d", r2.StatusCode)
	}
	if _, files := v.counts(); files != 0 {
		t.Errorf("%d files stored", files)
	}
}

// TestURLInput: a url input's source is its original, and its url, once
// downloaded, is where the API serves the bytes; an output's url too.
func TestURLInput(t *testing.T) {
	img := pngBytes(t, 30, 20)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(img)
	}))
	defer src.Close()
	v := newEnvConfig(t, spool.Config{AllowPrivateNetworks: true}, nil)
	res, b := v.do("POST", "/tasks", `{"kind": "image", "url": "`+src.URL+`/in.png", "width": 15, "format": "png"}`)
	if res.StatusCode != 201 {
		t.Fatalf("create: %d %s", res.StatusCode, b)
	}
	task := decode[map[string]any](t, b)
	if in := task["input"].(map[string]any); in["original"] != src.URL+"/in.png" || in["url"] != nil {
		t.Errorf("input before the download: %v", in)
	}
	done := v.waitTask(task["id"].(string))
	in := done["input"].(map[string]any)
	id, _ := in["id"].(string)
	if done["status"] != "completed" || id == "" || in["original"] != src.URL+"/in.png" ||
		in["url"] != v.srv.URL+"/files/"+id+"/content" {
		t.Fatalf("input after the download: %v (%v)", in, done["error"])
	}
	if res, b := v.do("GET", "/files/"+id+"/content", nil); res.StatusCode != 200 || !bytes.Equal(b, img) {
		t.Errorf("input content: %d, %d bytes", res.StatusCode, len(b))
	}
}

// TestSlowUploadOutlivesReadTimeout: an upload extends the server's read
// deadline, which is meant for small JSON bodies.
func TestSlowUploadOutlivesReadTimeout(t *testing.T) {
	v := newEnv(t, nil)
	srv := httptest.NewUnstartedServer(v.srv.Config.Handler)
	srv.Config = api.NewServer("", srv.Config.Handler)
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Start()
	defer srv.Close()
	img := pngBytes(t, 16, 16)
	pr, pw := io.Pipe()
	go func() {
		for i := range img {
			if i%(len(img)/4) == 0 {
				time.Sleep(150 * time.Millisecond) // 600 ms in all
			}
			if _, err := pw.Write(img[i : i+1]); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", srv.URL+"/files?filename=slow.png", pr)
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 201 {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("slow upload: %d %s", res.StatusCode, b)
	}
}

// TestSlowDownloadOutlivesWriteTimeout: a file's bytes may take longer to
// send than the server's WriteTimeout, meant for JSON answers.
func TestSlowDownloadOutlivesWriteTimeout(t *testing.T) {
	v := newEnv(t, nil)
	big := make([]byte, 16<<20) // more than loopback's socket buffers hold
	for i := range big {
		big[i] = byte(i * 7)
	}
	f := v.upload("big.bin", big)
	srv := httptest.NewUnstartedServer(v.srv.Config.Handler)
	srv.Config = api.NewServer("", srv.Config.Handler)
	srv.Config.WriteTimeout = 200 * time.Millisecond
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/files/"+f["id"].(string)+"/content", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got int
	buf := make([]byte, 256<<10)
	for {
		n, err := res.Body.Read(buf)
		got += n
		if err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // 64 reads or more: over a second
	}
	if res.StatusCode != 200 || got != len(big) {
		t.Fatalf("slow download: %d, %d of %d bytes", res.StatusCode, got, len(big))
	}
}

// TestDeleteFileInUse: DELETE of a file that a running task takes as input
// is a 409 file_in_use and leaves the file and its bytes; once the task is
// cancelled, the delete goes through.
func TestDeleteFileInUse(t *testing.T) {
	v := newEnv(t, nil)
	res, b := v.do("POST", "/files?filename=in.png", pngBytes(t, 8, 8), "Content-Type", "image/png")
	if res.StatusCode != 201 {
		t.Fatalf("upload: %d %s", res.StatusCode, b)
	}
	id := decode[map[string]any](t, b)["id"].(string)
	res, b = v.do("POST", "/tasks", `{"kind": "hold", "file_id": "`+id+`"}`)
	if res.StatusCode != 201 {
		t.Fatalf("create: %d %s", res.StatusCode, b)
	}
	task := decode[map[string]any](t, b)["id"].(string)
	res, b = v.do("DELETE", "/files/"+id, nil)
	if e := decode[errBody](t, b); res.StatusCode != http.StatusConflict || e.Error.Kind != "file_in_use" {
		t.Fatalf("delete the input of a running task: %d %s, want 409 file_in_use", res.StatusCode, b)
	}
	if res, _ = v.do("GET", "/files/"+id+"/content", nil); res.StatusCode != 200 {
		t.Errorf("content after a refused delete: %d", res.StatusCode)
	}
	if res, b = v.do("POST", "/tasks/"+task+"/cancel", nil); res.StatusCode != 200 {
		t.Fatalf("cancel: %d %s", res.StatusCode, b)
	}
	if res, b = v.do("DELETE", "/files/"+id, nil); res.StatusCode != http.StatusNoContent {
		t.Fatalf("delete once the task is cancelled: %d %s", res.StatusCode, b)
	}
}
