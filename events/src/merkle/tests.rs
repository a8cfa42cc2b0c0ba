//! The tree against published vectors (the CT test vectors of RFC 6962
//! implementations, the C2SP `merkle-tree` worked example), and against a
//! naive tree written straight from RFC 9162 §2.1 for every size up to 300.

use std::collections::HashMap;

use super::*;

fn hd(s: &str) -> Hash {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).expect("32 bytes of hex");
    out
}

/// The leaf inputs of the CT test vectors (certificate-transparency and
/// transparency-dev/merkle `testonly/constants.go`).
fn ct_leaves() -> Vec<Vec<u8>> {
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
        .iter()
        .map(|h| hex::decode(h).expect("hex"))
        .collect()
}

/// `MTH` of the first n CT leaves, by n.
const CT_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// Every perfect subtree of a list of leaf hashes, as a store keeps them.
struct Memory(HashMap<(u32, u64), Hash>);

impl Memory {
    fn of(leaves: &[Hash]) -> (Memory, Vec<CompactRange>) {
        let mut nodes = HashMap::new();
        let mut range = CompactRange::new();
        let mut ranges = vec![range.clone()];
        for leaf in leaves {
            range.append(*leaf, |level, index, hash| {
                nodes.insert((level, index), *hash);
            });
            ranges.push(range.clone());
        }
        (Memory(nodes), ranges)
    }
}

impl Nodes for Memory {
    type Error = (u32, u64);
    fn node(&self, level: u32, index: u64) -> Result<Hash, (u32, u64)> {
        self.0.get(&(level, index)).copied().ok_or((level, index))
    }
}

fn tree_of(inputs: &[Vec<u8>]) -> (Memory, Vec<CompactRange>) {
    let leaves: Vec<Hash> = inputs.iter().map(|d| leaf_hash(d)).collect();
    Memory::of(&leaves)
}

// The naive reference: RFC 9162 §2.1 over slices of leaf hashes.
fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn naive_mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = k_of(n);
            node_hash(&naive_mth(&d[..k]), &naive_mth(&d[k..]))
        }
    }
}

fn naive_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return vec![];
    }
    let k = k_of(d.len());
    if m < k {
        let mut p = naive_path(m, &d[..k]);
        p.push(naive_mth(&d[k..]));
        p
    } else {
        let mut p = naive_path(m - k, &d[k..]);
        p.push(naive_mth(&d[..k]));
        p
    }
}

fn naive_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![naive_mth(d)] };
    }
    let k = k_of(n);
    if m <= k {
        let mut p = naive_subproof(m, &d[..k], b);
        p.push(naive_mth(&d[k..]));
        p
    } else {
        let mut p = naive_subproof(m - k, &d[k..], false);
        p.push(naive_mth(&d[..k]));
        p
    }
}

#[test]
fn hashes_match_the_rfc_6962_hasher_vectors() {
    assert_eq!(empty_root(), hd(CT_ROOTS[0]));
    assert_eq!(leaf_hash(b""), hd("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"));
    assert_eq!(leaf_hash(b"L123456"), hd("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"));
}

#[test]
fn roots_of_the_ct_vectors_match_for_every_size() {
    let leaves = ct_leaves();
    let (memory, ranges) = tree_of(&leaves);
    for (size, want) in CT_ROOTS.iter().enumerate() {
        assert_eq!(ranges[size].root(), hd(want), "compact range at size {size}");
        assert_eq!(root(&memory, size as u64).unwrap(), hd(want), "stored nodes at size {size}");
    }
}

#[test]
fn ct_inclusion_and_consistency_vectors() {
    let (memory, _) = tree_of(&ct_leaves());
    // (leaf index, tree size, proof): transparency-dev/merkle testonly/reference_test.go
    // and proof/verify_test.go (whose indexes count from 1).
    let inclusion: [(u64, u64, &[&str]); 7] = [
        (0, 1, &[]),
        (0, 2, &["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"]),
        (1, 2, &["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"]),
        (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    let leaves = ct_leaves();
    for (index, size, want) in inclusion {
        let want: Vec<Hash> = want.iter().map(|h| hd(h)).collect();
        assert_eq!(inclusion_proof(&memory, index, size).unwrap(), want, "PATH({index}, D[{size}])");
        let leaf = leaf_hash(&leaves[index as usize]);
        verify_inclusion(index, size, &leaf, &want, &hd(CT_ROOTS[size as usize])).unwrap();
    }
    // (from, to, proof): the CT consistency vectors.
    let consistency: [(u64, u64, &[&str]); 4] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (from, to, want) in consistency {
        let want: Vec<Hash> = want.iter().map(|h| hd(h)).collect();
        assert_eq!(consistency_proof(&memory, from, to).unwrap(), want, "PROOF({from}, D[{to}])");
        verify_consistency(from, to, &hd(CT_ROOTS[from as usize]), &hd(CT_ROOTS[to as usize]), &want).unwrap();
    }
}

#[test]
fn compact_range_roots_match_the_transparency_dev_golden_roots() {
    // compact/range_test.go TestGetRootHashGolden: leaf i is i as two bytes, little-endian.
    use base64::Engine as _;
    let golden = [
        (10u64, "VjWMPSYNtCuCNlF/RLnQy6HcwSk6CIipfxm+hettA+4="),
        (15, "j4SulYmocFuxdeyp12xXCIgK6PekBcxzAIj4zbQzNEI="),
        (16, "c+4Uc6BCMOZf/v3NZK1kqTUJe+bBoFtOhP+P3SayKRE="),
        (100, "dUh9hYH88p0CMoHkdr1wC2szbhcLAXOejWpINIooKUY="),
        (255, "SmdsuKUqiod3RX2jyF2M6JnbdE4QuTwwipfAowI4/i0="),
    ];
    let inputs: Vec<Vec<u8>> = (0u16..255).map(|i| i.to_le_bytes().to_vec()).collect();
    let (memory, ranges) = tree_of(&inputs);
    for (size, want) in golden {
        let want = base64::engine::general_purpose::STANDARD.decode(want).unwrap();
        assert_eq!(ranges[size as usize].root().to_vec(), want, "size {size}");
        assert_eq!(root(&memory, size).unwrap().to_vec(), want, "size {size}");
    }
}

#[test]
fn the_c2sp_worked_example_of_seven_entries() {
    let d = ct_leaves();
    let (memory, _) = tree_of(&d[..7]);
    let [a, b, c, dd, e, f, g] = [0, 1, 2, 3, 4, 5, 6].map(|i| leaf_hash(&d[i]));
    let (h, i, j) = (node_hash(&a, &b), node_hash(&c, &dd), node_hash(&e, &f));
    let (k, l) = (node_hash(&h, &i), node_hash(&j, &g));
    let root7 = node_hash(&k, &l);
    assert_eq!(root(&memory, 7).unwrap(), root7);
    assert_eq!(root7, hd(CT_ROOTS[7]));
    for (index, want) in [(0, vec![b, i, l]), (3, vec![c, h, l]), (4, vec![f, g, k]), (6, vec![j, k])] {
        assert_eq!(inclusion_proof(&memory, index, 7).unwrap(), want, "index {index}");
    }
    for (from, want) in [(3, vec![c, dd, h, l]), (4, vec![l]), (6, vec![j, g, k])] {
        assert_eq!(consistency_proof(&memory, from, 7).unwrap(), want, "from {from}");
        let from_root = root(&memory, from).unwrap();
        verify_consistency(from, 7, &from_root, &root7, &want).unwrap();
    }
}

#[test]
fn every_proof_up_to_300_leaves_equals_the_naive_tree_and_verifies() {
    let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let (memory, ranges) = Memory::of(&leaves);
    let roots: Vec<Hash> = (0..=leaves.len()).map(|n| naive_mth(&leaves[..n])).collect();
    for n in 0..=leaves.len() {
        let size = n as u64;
        assert_eq!(ranges[n].root(), roots[n], "compact range root at {n}");
        assert_eq!(root(&memory, size).unwrap(), roots[n], "stored root at {n}");
        assert_eq!(CompactRange::read(&memory, size).unwrap(), ranges[n], "range read back at {n}");
        for m in 0..n {
            let proof = inclusion_proof(&memory, m as u64, size).unwrap();
            assert_eq!(proof, naive_path(m, &leaves[..n]), "PATH({m}, D[{n}])");
            verify_inclusion(m as u64, size, &leaves[m], &proof, &roots[n]).unwrap();
        }
        for m in 0..=n {
            let proof = consistency_proof(&memory, m as u64, size).unwrap();
            let want = if m == 0 || m == n { vec![] } else { naive_subproof(m, &leaves[..n], true) };
            assert_eq!(proof, want, "PROOF({m}, D[{n}])");
            verify_consistency(m as u64, size, &roots[m], &roots[n], &proof).unwrap();
        }
    }
}

#[test]
fn tampered_inclusion_proofs_are_rejected() {
    let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let (memory, _) = Memory::of(&leaves);
    let some = hd("abacaba000000000000000000000000000000000000000000060061e00123456");
    for (index, size) in [(0u64, 1u64), (0, 2), (5, 8), (6, 7), (12, 13), (31, 64), (40, 70), (69, 70)] {
        let root = root(&memory, size).unwrap();
        let proof = inclusion_proof(&memory, index, size).unwrap();
        let leaf = leaves[index as usize];
        verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
        let mut wrong: Vec<(String, u64, u64, Hash, Vec<Hash>, Hash)> = vec![
            ("index + 1".into(), index + 1, size, leaf, proof.clone(), root),
            ("index ^ 2".into(), index ^ 2, size, leaf, proof.clone(), root),
            ("size * 2".into(), index, size * 2, leaf, proof.clone(), root),
            ("size / 2".into(), index, size / 2, leaf, proof.clone(), root),
            ("wrong leaf".into(), index, size, some, proof.clone(), root),
            ("empty root".into(), index, size, leaf, proof.clone(), empty_root()),
            ("other root".into(), index, size, leaf, proof.clone(), some),
            ("trailing root".into(), index, size, leaf, [proof.clone(), vec![root]].concat(), root),
            ("preceding root".into(), index, size, leaf, [vec![root], proof.clone()].concat(), root),
        ];
        if index > 0 {
            wrong.push(("index - 1".into(), index - 1, size, leaf, proof.clone(), root));
        }
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i][0] ^= 8;
            wrong.push((format!("bit 3 of proof[{i}]"), index, size, leaf, p, root));
        }
        if !proof.is_empty() {
            wrong.push(("removed".into(), index, size, leaf, proof[..proof.len() - 1].to_vec(), root));
        }
        if proof.len() > 1 {
            let p = [vec![proof[0], some], proof[1..].to_vec()].concat();
            wrong.push(("inserted".into(), index, size, leaf, p, root));
        }
        for (what, i, s, l, p, r) in wrong {
            let wrong_is_right = i == index && s == size && l == leaf && p == proof && r == root;
            assert!(
                wrong_is_right || verify_inclusion(i, s, &l, &p, &r).is_err(),
                "{what} accepted for ({index}, {size})"
            );
        }
    }
}

#[test]
fn tampered_consistency_proofs_are_rejected() {
    let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let (memory, _) = Memory::of(&leaves);
    for (from, to) in [(1u64, 2u64), (1, 8), (3, 7), (4, 7), (6, 8), (7, 70), (32, 64), (33, 70)] {
        let (r1, r2) = (root(&memory, from).unwrap(), root(&memory, to).unwrap());
        let proof = consistency_proof(&memory, from, to).unwrap();
        verify_consistency(from, to, &r1, &r2, &proof).unwrap();
        assert!(verify_consistency(from, to, &r2, &r2, &proof).is_err(), "wrong first root ({from}, {to})");
        assert!(verify_consistency(from, to, &r1, &r1, &proof).is_err(), "wrong second root ({from}, {to})");
        assert!(verify_consistency(to, from, &r2, &r1, &proof).is_err(), "reversed ({from}, {to})");
        assert!(verify_consistency(from + 1, to, &r1, &r2, &proof).is_err(), "other first size ({from}, {to})");
        // (A proof can fit another second size of the same shape, 7 and 8
        // say: it then proves the same root, so only other shapes are tried.)
        assert!(verify_consistency(from, to * 2, &r1, &r2, &proof).is_err(), "size * 2 ({from}, {to})");
        assert!(verify_consistency(from, to, &r1, &r2, &proof[1..]).is_err(), "removed ({from}, {to})");
        assert!(verify_consistency(from, to, &r1, &r2, &[proof.clone(), vec![r2]].concat()).is_err());
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i][31] ^= 1;
            assert!(verify_consistency(from, to, &r1, &r2, &p).is_err(), "bit flip in proof[{i}] ({from}, {to})");
        }
    }
    // A tree of the same size with another leaf is not consistent.
    let mut other = leaves.clone();
    other[2] = leaf_hash(b"rewritten");
    let (rewritten, _) = Memory::of(&other);
    let proof = consistency_proof(&rewritten, 5, 70).unwrap();
    let (r1, r2) = (root(&memory, 5).unwrap(), root(&rewritten, 70).unwrap());
    assert_eq!(verify_consistency(5, 70, &r1, &r2, &proof), Err(ProofError::RootMismatch));
}
