// Package integrity makes custody's log tamper-evident: an RFC 6962 Merkle tree over
// the stored events, Ed25519-signed checkpoints of its root, inclusion and consistency
// proofs, and a Verifier that recomputes the tree from the log and names the first
// event that differs from what was signed.
//
// It is a library: the integrity projector that feeds a Tree from the stream, and the
// commands that sign checkpoints and print proofs, live elsewhere. Tree hashing and
// proofs come from golang.org/x/mod/sumdb/tlog, signatures from
// golang.org/x/mod/sumdb/note. Everything below can be checked by an auditor with
// SHA-256, base64 and an Ed25519 implementation alone; "Checking offline" says how.
//
// # Leaves
//
// Leaf i (from 0) of the tree is the event stored at stream sequence i+1: the tree of
// size n covers exactly sequences 1 to n. A stored event is its sequence, its subject
// (for example custody.event.phi.accessed) and its stored bytes, exactly as the stream
// returns them. Its leaf encoding is
//
//	"custody-leaf/v1\n"            16 bytes, the format and its version
//	seq                            8 bytes, unsigned big-endian, 1 or more
//	len(subject)                   4 bytes, unsigned big-endian
//	subject                        len(subject) bytes
//	data                           the stored bytes, to the end
//
// and its leaf hash is SHA-256(0x00 || encoding), the RFC 6962 leaf hash
// (tlog.RecordHash). Binding the sequence and the subject into the leaf means that an
// event moved to another sequence, or re-filed under another subject, changes its leaf.
// LeafHash computes it; AppendLeaf returns the encoding.
//
// An interior node is SHA-256(0x01 || left || right) (tlog.NodeHash), and the root of
// n leaves is the RFC 6962 Merkle tree hash MTH: for n = 0, SHA-256 of the empty string;
// for n = 1, the leaf hash; otherwise, with k the largest power of two below n,
// SHA-256(0x01 || MTH(leaves 0 to k-1) || MTH(leaves k to n-1)).
//
// # Tree file
//
// A Tree is one file of 32-byte hashes, no header: the "stored hashes" of tlog, the
// hash of index x at byte offset 32x. Appending leaf i writes, in order, its leaf hash
// and then one interior hash for each trailing 1 bit of i: the hash of the subtree of
// size 2, 4, 8, ... that leaf i completes (at level l, SHA-256(0x01 || the stored hash of
// the left level l-1 subtree || the hash just written)). So leaf i's hash is at index
// tlog.StoredHashIndex(0, i) = i + i/2 + i/4 + ... (integer division, until 0), and
// a tree of n leaves holds tlog.StoredHashCount(n) hashes, a little under 2n. The file
// only grows; a hash once written never changes.
//
// Appends are buffered (Sync makes them durable). Open recovers from a crash by keeping
// the largest n whose StoredHashCount(n) hashes are all in the file and truncating the
// rest, then recomputing the last leaf's interior hashes (a mismatch is ErrCorrupt:
// remove the file and append the log again; the tree is derived data). OpenReadOnly
// never writes, for an auditor's copy.
//
// # Checkpoints
//
// A checkpoint is a signed note (golang.org/x/mod/sumdb/note) whose text is the
// transparency-dev checkpoint format, three lines each ending in a newline:
//
//	<origin>                       the log's name, e.g. custody.example.org/CUSTODY_EVENTS
//	<size>                         decimal, no leading zeros: leaves covered
//	<root>                         standard base64 (with padding) of the 32-byte root
//
// followed by an empty line and one or more signature lines
//
//	— <key name> <base64 of 4-byte key hash || 64-byte Ed25519 signature>
//
// (an em dash U+2014 and a space start the line). The signature is over the text,
// origin to the root's newline inclusive. A key is written "name+keyhash+base64", the
// key being the byte 0x01 (Ed25519) and the 32-byte public key; keyhash is 8 hex digits,
// the first 4 bytes of SHA-256(name || "\n" || 0x01 || public key). The origin and key
// names are non-empty UTF-8 without spaces or '+'. Parsing is strict: no extension
// lines, a canonical size of at most MaxSize, a canonical 44-character root.
//
// Sign makes one, OpenCheckpoint verifies and parses one. A checkpoint directory holds
// one file per checkpoint, named by its size in 20 digits, <size>.checkpoint, holding
// the signed note exactly; WriteCheckpoint adds one atomically and never replaces a
// different checkpoint of the same size, ReadCheckpoints lists them by size.
//
// Keys rotate by adding the new public key to the verifier set and keeping the old
// one: a checkpoint stays verifiable forever with the public key that signed it, and
// LoadVerifiers reads a file of several keys, one per line. A checkpoint may carry
// signatures by both keys during a changeover (Sign takes several signers).
//
// # Proofs
//
// An inclusion proof shows that one event is in a signed tree; it holds the event's
// leaf hash, never its content. Its text form:
//
//	custody inclusion proof v1
//	seq <sequence>
//	leaf <base64 leaf hash>
//	hashes <count>
//	<base64 hash>                  count lines: the RFC 6962 audit path, deepest first
//	checkpoint <length in bytes>
//	<the signed checkpoint, exactly that many bytes, ending the proof>
//
// A consistency proof shows that the tree of an older checkpoint is a prefix of the
// tree of a newer one: nothing signed before was changed or removed. Its text form:
//
//	custody consistency proof v1
//	hashes <count>
//	<base64 hash>                  count lines: the RFC 6962 consistency proof
//	old checkpoint <length in bytes>
//	<the older signed checkpoint>
//	new checkpoint <length in bytes>
//	<the newer signed checkpoint, ending the proof>
//
// Every line ends in a newline; numbers are canonical decimals; hashes are standard
// base64 of 32 bytes. Tree.ProveInclusion and Tree.ProveConsistency make them,
// FormatInclusion, ParseInclusion, FormatConsistency and ParseConsistency convert them,
// CheckInclusion and CheckConsistency verify them.
//
// # Checking offline
//
// An auditor who holds the trusted public keys checks an inclusion proof for an event
// (seq, subject, data) as follows. LSB(x) is x's lowest bit; H is SHA-256.
//
//  1. Split the checkpoint at its last "\n\n": the text is everything up to and
//     including the first of those newlines. Verify at least one signature line by a
//     trusted key: name and key hash match the key, and Ed25519 verifies the 64 bytes
//     after the key hash over the text. Reject the proof otherwise.
//  2. Read origin, size and root from the text; the origin must be the expected log.
//  3. Compute the leaf hash r = H(0x00 || leaf encoding of the event); it must equal the
//     proof's leaf line. Require 1 <= seq <= size.
//  4. Let fn = seq-1 and sn = size-1. For each proof hash p in order: if sn = 0, reject;
//     if LSB(fn) = 1 or fn = sn, set r = H(0x01 || p || r) and then, if LSB(fn) = 0,
//     shift fn and sn right by one until LSB(fn) = 1 or fn = 0; otherwise set
//     r = H(0x01 || r || p). Then shift fn and sn right by one.
//  5. Accept if sn = 0 and r equals the root. (This is RFC 9162, section 2.1.3.2.)
//
// A consistency proof from the old checkpoint (size m, root R1) to the new one (size
// n, root R2):
//
//  1. Verify both checkpoints as in steps 1 and 2; they must have the same origin and
//     m <= n. If m = n, accept if the proof is empty and R1 = R2. (The empty tree, m = 0,
//     is a prefix of any tree when R1 = H("") and the proof is empty.)
//  2. Let c be the proof hashes; if c is empty, reject. If m is a power of two, put R1
//     in front of c.
//  3. Let fn = m-1 and sn = n-1. While LSB(fn) = 1, shift fn and sn right by one.
//  4. Set fr = sr = c[0]. For each following hash h of c: if sn = 0, reject; if
//     LSB(fn) = 1 or fn = sn, set fr = H(0x01 || h || fr) and sr = H(0x01 || h || sr) and
//     then, if LSB(fn) = 0, shift fn and sn right by one until LSB(fn) = 1 or fn = 0;
//     otherwise set sr = H(0x01 || sr || h). Then shift fn and sn right by one.
//  5. Accept if fr = R1, sr = R2 and sn = 0. (RFC 9162, section 2.1.4.2.)
//
// To check a whole log rather than one event, recompute the root of the first S leaves
// for each checkpoint of size S and compare; that is what Verifier does.
//
// # Verifying a log
//
// A Verifier is given every stored event in order (Add), the checkpoint files and,
// optionally, the integrity projector's Tree as a reference; Result returns a Report:
//
//   - Gaps: sequences missing from the events given, and events out of order (left out
//     of the recomputed tree, which takes events in the order given).
//   - For each checkpoint file, by size and file name: malformed, not signed by a known
//     key, bad signature, wrong origin, misnamed, or, for a valid one, whether the log's
//     root at its size is the signed root. When it is not, a larger checkpoint that the
//     log or the reference reproduces proves the checkpoint itself wrong (WrongRoot);
//     otherwise the log is at fault (LogMismatch). A checkpoint larger than the log
//     means its tail was removed (BeyondLog).
//   - The reference tree is first authenticated: the root of its first S leaf hashes is
//     recomputed for each checkpoint size S and compared with the signed root, and the
//     reference is trusted up to the largest S that matches. (The file's stored roots
//     alone would not do: a root read from stored interior hashes does not cover a leaf
//     hash altered beneath them. A stored root that differs from the recomputed one is
//     reported as a self-contradicting file.) Then every event's leaf hash is compared
//     with the reference's leaf at the same position.
//   - FirstBad: the first sequence missing or different from what was signed. With an
//     authenticated reference it is exact. Without one, a mismatch at checkpoint size S
//     bounds it to (G, S], G being the largest checkpoint size the log reproduces.
//
// Limits: events after the last checkpoint are covered by no signature; removing them
// is found only against a longer reference tree. A wrong root in the last checkpoint
// cannot be told apart from a changed log without a reference tree or a later
// checkpoint, and is reported as a log mismatch.
package integrity
