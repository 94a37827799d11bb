//! Hostile model files as bytes: truncated, not a safetensors container, another
//! format or version, bad JSON, random corruption; and saving is atomic.

use super::*;

#[test]
fn truncated_files() {
    let b = good_bytes();
    // every prefix, then a few lengths cut from the end and some bytes appended
    for n in 0..b.len() {
        refused(&b[..n], &[]);
    }
    let mut longer = b.clone();
    longer.extend_from_slice(b"junk");
    refused(&longer, &["safetensors"]);
    refused(&b[..b.len() - 1], &["safetensors"]);
}

#[test]
fn not_a_model_container() {
    refused(b"", &["expected a safetensors container"]);
    refused(b"hello, world", &["expected a safetensors container"]);
    refused(&[0xff; 64], &["expected a safetensors container"]);
    // a header size far beyond the file: refused before anything is allocated
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    refused(&huge, &["safetensors"]);
    let mut big = (1u64 << 40).to_le_bytes().to_vec();
    big.extend_from_slice(b"{}");
    refused(&big, &["safetensors"]);
    // a header that claims a 4 GB tensor without its data
    let header = br#"{"w":{"dtype":"F32","shape":[1073741824],"data_offsets":[0,4294967296]}}"#;
    let mut claim = (header.len() as u64).to_le_bytes().to_vec();
    claim.extend_from_slice(header);
    refused(&claim, &["safetensors"]);
    // a header whose shape overflows
    let header =
        br#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}}"#;
    let mut claim = (header.len() as u64).to_le_bytes().to_vec();
    claim.extend_from_slice(header);
    refused(&claim, &["safetensors"]);
}

#[test]
fn safetensors_files_that_are_not_rntk_models() {
    let t = vec![(
        "w".to_string(),
        Tensor::from_vec([2], vec![1.0f32, 2.0]).unwrap(),
    )];
    let plain = weights::encode("m", &t, HashMap::new()).unwrap();
    refused(&plain, &["not an rntk model", "no metadata"]);
    let other = weights::encode("m", &t, HashMap::from([("format".into(), "pt".into())])).unwrap();
    refused(&other, &["not an rntk model", "format"]);
    // an integer tensor
    let header = br#"{"__metadata__":{"rntk-model":"{\"format\":\"rntk-model\",\"version\":1}"},"w":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header);
    b.extend_from_slice(&[0, 0, 0, 0]);
    refused(&b, &[]);
}

#[test]
fn wrong_format_or_version() {
    refused(
        &edited(|g| g["format"] = json!("onnx")),
        &["expected format \"rntk-model\"", "\"onnx\""],
    );
    refused(
        &edited(|g| g["version"] = json!(2)),
        &["version 2 is newer", "version 1", "newer rntk"],
    );
    refused(
        &edited(|g| g["version"] = json!(0)),
        &["expected model format version 1, found version 0"],
    );
    refused(&edited(|g| g["version"] = json!("1")), &["\"version\""]);
    refused(
        &edited(|g| {
            g.as_object_mut().unwrap().remove("version");
        }),
        &["version"],
    );
    // a newer version is refused before its (unknown) contents are looked at
    let b = good_bytes();
    refused(
        &with_graph(&b, r#"{"format":"rntk-model","version":7,"nodes":"??"}"#),
        &["version 7 is newer"],
    );
}

#[test]
fn bad_json() {
    let b = good_bytes();
    for text in ["", "{", "[]", "null", "\"rntk-model\"", "{\"format\":1}"] {
        refused(&with_graph(&b, text), &["graph description"]);
    }
    let g = graph_of(&b).to_string();
    refused(&with_graph(&b, &g[..g.len() / 2]), &["graph description"]);
    refused(
        &edited(|g| g["surprise"] = json!(1)),
        &["does not follow model format version 1", "surprise"],
    );
    refused(
        &edited(|g| g["functions"][0]["kind"] = json!({"primitive": {"Warp": {}}})),
        &["does not follow model format version 1", "Warp"],
    );
    refused(
        &edited(|g| g["variables"][0]["info"]["dtype"] = json!("int8")),
        &["int8"],
    );
    refused(
        &edited(|g| g["variables"][0]["info"]["shape"] = json!([-3])),
        &["dimension -3"],
    );
    refused(
        &edited(|g| g["variables"] = json!({})),
        &["expected a sequence"],
    );
}

/// xorshift: deterministic corruption.
fn rng(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn random_corruption_never_panics() {
    let b = good_bytes();
    let mut s = 0x9e3779b97f4a7c15u64;
    let mut refusals = 0;
    for _ in 0..3000 {
        let mut m = b.clone();
        for _ in 0..1 + rng(&mut s) % 3 {
            let i = (rng(&mut s) % m.len() as u64) as usize;
            m[i] = rng(&mut s) as u8;
        }
        match model_from_bytes(&m) {
            Ok(_) => {}
            Err(Error::Format { .. }) => refusals += 1,
            Err(e) => panic!("expected a format error, got {e:?}"),
        }
    }
    assert!(refusals > 1000, "{refusals}");
    // corruption inside the JSON text only (the container stays valid)
    let g = graph_of(&b).to_string().into_bytes();
    for _ in 0..2000 {
        let mut m = g.clone();
        let i = (rng(&mut s) % m.len() as u64) as usize;
        m[i] = b"0123456789-[]{}\",:aez"[(rng(&mut s) % 21) as usize];
        if let Ok(text) = String::from_utf8(m) {
            match model_from_bytes(&with_graph(&b, &text)) {
                Ok(_) | Err(Error::Format { .. }) => {}
                Err(e) => panic!("expected a format error, got {e:?}"),
            }
        }
    }
}

#[test]
fn saving_is_atomic() {
    let dir = TempDir::new("atomic");
    let path = dir.file("m.rntk");
    let m = model();
    m.save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    // a model the format cannot store: refused, the previous file stays whole
    let x = input_variable([2]);
    let bad = leaky_relu(&x, f64::NAN).unwrap().owner().unwrap();
    match bad.save(&path) {
        Err(Error::InvalidArgument { detail, .. }) => assert!(detail.contains("NaN"), "{detail}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    Function::load(&path).unwrap();
    // a directory that does not exist: an I/O error naming the file, nothing written
    let nowhere = dir.file("missing/dir/m.rntk");
    match m.save(&nowhere) {
        Err(Error::Io { file, .. }) => assert!(file.contains("missing"), "{file}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["m.rntk"]);
    // loading a file that does not exist
    match Function::load(dir.file("absent.rntk")) {
        Err(Error::Io { file, detail }) => {
            assert!(file.ends_with("absent.rntk"));
            assert!(detail.contains("cannot read"), "{detail}");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    // a format error from a file names the file
    std::fs::write(dir.file("junk.rntk"), b"junk").unwrap();
    match Function::load(dir.file("junk.rntk")) {
        Err(Error::Format { file, .. }) => assert!(file.ends_with("junk.rntk")),
        other => panic!("expected a format error, got {other:?}"),
    }
}
