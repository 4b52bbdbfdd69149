package kinds

import (
	"encoding/json"
	"testing"

	"github.com/spoolrun/spool"
)

// TestFromFFprobe maps ffprobe outputs, trimmed to the fields the prober
// reads, of formats the media tests cannot make with every ffmpeg build.
func TestFromFFprobe(t *testing.T) {
	t.Parallel()
	basic := spool.File{Object: "source", Kind: "file", Type: "application/octet-stream", Filesize: 1000}
	tests := []struct {
		name, path, probe string
		want              spool.File
	}{
		{"mp3 with cover art", "song.mp3", `{"format": {"format_name": "mp3", "duration": "3.5", "bit_rate": "128000"},
			"streams": [{"codec_type": "audio", "codec_name": "mp3", "tags": {"language": "eng"}},
				{"codec_type": "video", "codec_name": "png", "width": 500, "height": 500, "avg_frame_rate": "90000/1", "disposition": {"attached_pic": 1}}]}`,
			spool.File{Kind: "audio", Type: "audio/mpeg", Container: "mp3", Codec: "mp3", Duration: 3.5, Bitrate: 128000, Language: "eng"}},
		{"webm", "a", `{"format": {"format_name": "matroska,webm", "duration": "2.000000"},
			"streams": [{"codec_type": "video", "codec_name": "vp9", "width": 640, "height": 360, "avg_frame_rate": "30000/1001", "duration": "N/A"},
				{"codec_type": "audio", "codec_name": "opus", "tags": {"language": "und"}}]}`,
			spool.File{Kind: "video", Type: "video/webm", Container: "webm", Codec: "vp9", Width: 640, Height: 360,
				Orientation: "landscape", FPS: 30000.0 / 1001, Duration: 2}},
		{"webm audio", "a.webm", `{"format": {"format_name": "matroska,webm", "duration": "N/A"},
			"streams": [{"codec_type": "audio", "codec_name": "opus", "duration": "4.25"}]}`,
			spool.File{Kind: "audio", Type: "audio/webm", Container: "webm", Codec: "opus", Duration: 4.25}},
		{"matroska", "a.mkv", `{"format": {"format_name": "matroska,webm"},
			"streams": [{"codec_type": "video", "codec_name": "h264", "width": 1920, "height": 1080, "avg_frame_rate": "0/0", "r_frame_rate": "24/1"},
				{"codec_type": "audio", "codec_name": "opus"}]}`,
			spool.File{Kind: "video", Type: "video/x-matroska", Container: "mkv", Codec: "h264", Width: 1920, Height: 1080,
				Orientation: "landscape", FPS: 24}},
		{"phone video turned by a display matrix", "a.mov", `{"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "tags": {"major_brand": "qt  "}},
			"streams": [{"codec_type": "video", "codec_name": "hevc", "width": 1920, "height": 1080, "avg_frame_rate": "30/1",
				"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}]}`,
			spool.File{Kind: "video", Type: "video/quicktime", Container: "mov", Codec: "hevc", Width: 1080, Height: 1920,
				Orientation: "portrait", Rotation: 90, FPS: 30}},
		{"rotate tag", "a.mp4", `{"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "tags": {"major_brand": "isom"}},
			"streams": [{"codec_type": "video", "codec_name": "h264", "width": 640, "height": 480, "avg_frame_rate": "25/1", "tags": {"rotate": "270"}}]}`,
			spool.File{Kind: "video", Type: "video/mp4", Container: "mp4", Codec: "h264", Width: 480, Height: 640,
				Orientation: "portrait", Rotation: 270, FPS: 25}},
		{"upside down", "a.mp4", `{"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "tags": {"major_brand": "isom"}},
			"streams": [{"codec_type": "video", "codec_name": "h264", "width": 640, "height": 480, "avg_frame_rate": "25/1", "tags": {"rotate": "180"}}]}`,
			spool.File{Kind: "video", Type: "video/mp4", Container: "mp4", Codec: "h264", Width: 640, Height: 480,
				Orientation: "landscape", Rotation: 180, FPS: 25}},
		{"m4a", "a.m4a", `{"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "tags": {"major_brand": "M4A "}},
			"streams": [{"codec_type": "audio", "codec_name": "aac"}]}`,
			spool.File{Kind: "audio", Type: "audio/mp4", Container: "mp4", Codec: "aac"}},
		{"3gp", "a.3gp", `{"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "tags": {"major_brand": "3gp4"}},
			"streams": [{"codec_type": "video", "codec_name": "h263", "width": 176, "height": 144, "avg_frame_rate": "15/1"}]}`,
			spool.File{Kind: "video", Type: "video/3gpp", Container: "3gp", Codec: "h263", Width: 176, Height: 144,
				Orientation: "landscape", FPS: 15}},
		{"avif", "a.avif", `{"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "tags": {"major_brand": "avif"}},
			"streams": [{"codec_type": "video", "codec_name": "av1", "width": 100, "height": 100, "avg_frame_rate": "1/1"}]}`,
			spool.File{Kind: "image", Type: "image/avif", Container: "avif", Codec: "av1", Width: 100, Height: 100, Orientation: "square"}},
		{"ogg video", "a.ogv", `{"format": {"format_name": "ogg"},
			"streams": [{"codec_type": "video", "codec_name": "theora", "width": 320, "height": 240, "avg_frame_rate": "25/1"}]}`,
			spool.File{Kind: "video", Type: "video/ogg", Container: "ogg", Codec: "theora", Width: 320, Height: 240,
				Orientation: "landscape", FPS: 25}},
		{"gif", "a.gif", `{"format": {"format_name": "gif", "duration": "1.5"},
			"streams": [{"codec_type": "video", "codec_name": "gif", "width": 30, "height": 20, "avg_frame_rate": "10/1", "pix_fmt": "bgra"}]}`,
			spool.File{Kind: "image", Type: "image/gif", Container: "gif", Codec: "gif", Width: 30, Height: 20, Orientation: "landscape",
				Transparency: true}},
		{"vp9 with alpha", "a.webm", `{"format": {"format_name": "matroska,webm"},
			"streams": [{"codec_type": "video", "codec_name": "vp9", "width": 64, "height": 64, "avg_frame_rate": "25/1",
				"pix_fmt": "yuva420p", "nb_frames": "50"}]}`,
			spool.File{Kind: "video", Type: "video/webm", Container: "webm", Codec: "vp9", Width: 64, Height: 64, Orientation: "square",
				FPS: 25, Transparency: true, Frames: 50}},
		{"image2 jpeg", "a.jpeg", `{"format": {"format_name": "image2"},
			"streams": [{"codec_type": "video", "codec_name": "mjpeg", "width": 8, "height": 8}]}`,
			spool.File{Kind: "image", Type: "image/jpeg", Container: "jpeg", Codec: "jpeg", Width: 8, Height: 8, Orientation: "square"}},
		{"unmapped format keeps the basic type", "a.wmv", `{"format": {"format_name": "asf", "duration": "1"},
			"streams": [{"codec_type": "video", "codec_name": "wmv2", "width": 320, "height": 240, "avg_frame_rate": "25/1"}]}`,
			spool.File{Kind: "video", Type: "application/octet-stream", Container: "asf", Codec: "wmv2", Width: 320, Height: 240,
				Orientation: "landscape", FPS: 25, Duration: 1}},
		{"subtitles only", "a.srt", `{"format": {"format_name": "srt"}, "streams": [{"codec_type": "subtitle", "codec_name": "subrip"}]}`,
			spool.File{Kind: "file", Type: "application/octet-stream"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out ffprobeOutput
			if err := json.Unmarshal([]byte(tt.probe), &out); err != nil {
				t.Fatal(err)
			}
			b := basic
			got := fromFFprobe(&out, &b, tt.path)
			want := tt.want
			want.Object, want.Filesize = "source", basic.Filesize
			if g, w := mustJSON(t, got), mustJSON(t, &want); g != w {
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestQuoteBody: error responses are quoted short and only when they are
// text.
func TestQuoteBody(t *testing.T) {
	t.Parallel()
	long := make([]byte, errorBodyLen+50)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"empty", nil, ""},
		{"text", []byte("not\n  found\n"), ": not found"},
		{"long", long, ": " + string(long[:errorBodyLen]) + "…"},
		{"binary", []byte{0x00, 0x01, 0xff, 'a'}, ""},
		{"cut inside a rune", append(long[:errorBodyLen-1:errorBodyLen-1], "é"...), ": " + string(long[:errorBodyLen-1]) + "…"},
	}
	for _, tt := range tests {
		if got := quoteBody(tt.body); got != tt.want {
			t.Errorf("%s: quoteBody = %q, want %q", tt.name, got, tt.want)
		}
	}
}
