package kinds

// ffInput returns the arguments that open the local file at path as an
// input of ffprobe or ffmpeg. Every ffmpeg or ffprobe call of this package
// opens its inputs through it, one call per input, placed where that
// input's -i goes.
//
// Inputs come from users, and some formats name further URLs that the
// demuxer opens: an HLS or DASH playlist its segments and keys, a concat
// list its parts. -protocol_whitelist file lets the input and everything
// it refers to be read only from local files, so that a file cannot make
// ffmpeg fetch anything from the network, where it would reach addresses
// the engine's SSRF policy refuses, or ask a server who probes it. ffmpeg's
// file protocol already limits what a file opens to file, crypto and data,
// but that is ffmpeg's default rather than a guarantee, and says nothing of
// an input opened another way; the whitelist is said here once for all.
// Given before -i, it applies to that input only.
//
// "file:" keeps a name such as "a:b.mp4" from being read as a protocol,
// and -i one starting with "-" from being read as an option.
func ffInput(path string) []string {
	return []string{"-protocol_whitelist", "file", "-i", "file:" + path}
}
