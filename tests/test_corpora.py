"""Every corpus file: a tree in its own naming scheme indexes to exact counts, levels and reasons."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from corpus_trees import BUNDLED, CORPORA, TREES, options
from corpus_trees.cremad import tree as cremad
from corpus_trees.manifest import OPTIONS as MANIFEST
from speechneurons.datasets import available, load_corpus
from speechneurons.datasets.index import IndexFilters, build_index, clip_columns, scan
from speechneurons.datasets.spec import CorpusSpec, Factor

def test_every_corpus_module_is_found_by_name_and_has_its_test_data():
    assert {"cremad", "emodb", "manifest", "ravdess", "savee", "tess"} <= set(available())
    # one test-data module per corpus (tests/corpus_trees/<name>.py), or bundled files
    assert sorted([*CORPORA, *BUNDLED]) == available()
    with pytest.raises(KeyError, match="no corpus 'emodd' \\(did you mean 'emodb'\\?\\)"):
        load_corpus("emodd")


@pytest.mark.parametrize("name", sorted(TREES))
def test_tree_indexes_exactly(name, tmp_path):
    root, valid, bad = TREES[name](tmp_path / name)
    corpus = load_corpus(name, options(name))
    clips, rejected = scan(corpus, root, progress=False)
    assert list(clips.columns) == clip_columns(corpus.spec)
    assert len(clips) == valid and clips["clip_id"].is_unique
    reasons = dict(zip(rejected["path"], rejected["reason"]))
    assert set(reasons) == set(bad), reasons
    for path, fragment in bad.items():
        assert fragment in reasons[path], (path, reasons[path])
    speakers, levels = CORPORA[name].SPEAKERS, CORPORA[name].LEVELS
    assert set(clips["speaker"].astype(str)) == speakers
    for factor, found in levels.items():
        assert set(clips[factor]) == found, factor
        assert found <= set(corpus.spec.levels(factor))
    # every clip of a within-speaker factor's speaker... and a between factor is constant per speaker
    for factor in corpus.spec.factors:
        if factor.varies == "between":
            assert clips.groupby("speaker")[factor.name].nunique(dropna=False).eq(1).all()
    assert (clips["duration_s"] == 0.5).all() and (clips["sample_rate"] == 16_000).all()


def test_cremad_sex_and_age_come_from_the_demographics(tmp_path):
    root, _, _ = cremad(tmp_path / "with")
    clips, _ = scan(load_corpus("cremad"), root, progress=False)
    by_speaker = clips.groupby("speaker").first()
    assert by_speaker["sex"].to_dict() == {"1001": "male", "1002": "female", "1003": "male",
                                           "1004": "female"}
    assert by_speaker["age"].to_dict() == {"1001": 30.0, "1002": 31.0, "1003": 32.0, "1004": 33.0}
    root, _, _ = cremad(tmp_path / "without", demographics=False)
    clips, _ = scan(load_corpus("cremad"), root, progress=False)
    assert clips["sex"].isna().all() and clips["age"].isna().all() and len(clips) == 32
    # 8 clips per speaker: IEO anger and happy at LO and HI, neutral XX; DFA all three at XX
    assert clips.groupby(["speaker", "sentence"]).size().unstack().eq(pd.Series(
        {"DFA": 3, "IEO": 5})).all().all()


def test_filters_speak_in_each_corpus_factors(tmp_path):
    root, _, _ = TREES["emodb"](tmp_path)
    corpus = load_corpus("emodb")
    index = build_index(corpus, root, IndexFilters.from_config(
        {"sex": ["female"], "emotion": ["anger", "neutral"]}, corpus.spec), progress=False)
    assert len(index.clips) == 2 * 2 * 2 and set(index.clips["speaker"]) == {"08", "09"}
    assert "emotion: 2 value(s), anger 4, neutral 4" in index.notes
    with pytest.raises(KeyError, match="dataset.filters.gender: not a filter of corpus emodb"):
        IndexFilters.from_config({"gender": ["female"]}, corpus.spec)
    with pytest.raises(ValueError, match=re.escape("dataset.filters.emotion: ['angry'] not among")):
        IndexFilters.from_config({"emotion": ["angry"]}, corpus.spec)
    capped = build_index(corpus, root, IndexFilters.from_config({"max_per_cell": 1}, corpus.spec),
                         progress=False)
    assert len(capped.clips) == 3 * 2  # one per (emotion, sex) cell


def test_a_folder_of_another_corpus_says_what_it_expected(tmp_path):
    root, _, _ = TREES["tess"](tmp_path)
    from speechneurons.datasets.index import NoValidClipsError

    with pytest.raises(NoValidClipsError, match="no valid savee audio file found .*expected DC_a01.wav"):
        build_index(load_corpus("savee"), root, progress=False)


def test_manifest_declares_its_design_and_errors_name_the_key(tmp_path):
    spec = load_corpus("manifest", MANIFEST).spec
    assert spec.factor_names == ["mood", "sex", "loudness"] and spec.within() == ["mood", "loudness"]
    assert (spec.target, spec.group, spec.graded) == ("mood", "sex", ("loudness", "soft", "loud"))
    with pytest.raises(ValueError, match="dataset.manifest: corpus manifest: target 'tone' is not a factor"):
        load_corpus("manifest", {**MANIFEST, "target": "tone"})
    with pytest.raises(ValueError, match="dataset.manifest.factors.sex: factor sex: varies must be"):
        load_corpus("manifest", {**MANIFEST, "factors": {
            **MANIFEST["factors"], "sex": {"levels": ["f", "m"], "varies": "across"}}})
    with pytest.raises(ValueError, match="group 'mood' must vary between speakers"):
        load_corpus("manifest", {**MANIFEST, "group": "mood"})
    root, _, _ = TREES["manifest"](tmp_path)
    (root / "other.csv").write_text("file,talker\nrec/extra.wav,t1\n")
    with pytest.raises(ValueError, match=r"other.csv: no column\(s\) \['mood', 'sex', 'loudness', "
                                         r"'session'\]"):
        scan(load_corpus("manifest", {**MANIFEST, "file": "other.csv"}), root, progress=False)
    clips, _ = scan(load_corpus("manifest", MANIFEST), root, progress=False)
    assert set(clips["session"]) == {"day1", "day2"}


def test_spec_checks_its_roles():
    emotion = Factor("emotion", ("a", "b"), "within")
    with pytest.raises(ValueError, match="levels repeat"):
        Factor("x", ("a", "a"), "within")
    with pytest.raises(ValueError, match="graded .* must name a within-speaker factor and two of its"):
        CorpusSpec("c", (emotion,), target="emotion", graded=("emotion", "a", "z"))


def test_no_ravdess_vocabulary_outside_its_own_file(repo):
    """The generic code speaks in the spec's factors: grep finds no RAVDESS emotion or factor name
    in the package (outside datasets/), the scripts, the rules, the schema or the report texts."""
    words = ["emotions?", "actors?", "genders?", "intensity", "intensities", "statements?",
             "repetitions?", "vocal_channel", "modality", "neutral", "calm", "happy", "sad", "angry",
             "fearful", "disgust", "surprised"]
    pattern = re.compile(r"(?<![a-z])(" + "|".join(words) + r")(?![a-z])", re.IGNORECASE)
    # calibration.py builds its nulls in RAVDESS's design on purpose (24 actors x 60 clips), as
    # datasets/ravdess.py describes the corpus: both speak its words
    generic = [p for p in (repo / "speechneurons").rglob("*.py")
               if p.parent.name != "datasets" and p.name != "calibration.py"]
    generic += [repo / "speechneurons/datasets" / f for f in ("__init__.py", "spec.py", "index.py",
                                                              "manifest.py")]
    generic += [*(repo / "scripts").glob("*.py"), *(repo / "rules").glob("*.smk"),
                repo / "Snakefile", *(repo / "schemas").glob("*.yaml"), *(repo / "report").glob("*.rst")]
    # Praat's acoustic intensity (dB) is the prosody track's measure, not RAVDESS's intensity factor
    allowed = dict.fromkeys(["speechneurons/prosody.py", "speechneurons/unit_prosody.py",
                             "speechneurons/prosody_report.py", "report/prosody.rst", "report/prosody_page.rst"],
                            {"intensity"})

    def corpus_words(path, line):
        return {m.lower() for m in pattern.findall(line)} - allowed.get(str(path.relative_to(repo)), set())

    hits = [f"{p.relative_to(repo)}:{n}: {line.strip()}" for p in generic
            for n, line in enumerate(p.read_text().splitlines(), start=1) if corpus_words(p, line)]
    assert hits == []
    # and the test can fail: the corpus's own file is full of them
    assert pattern.search((repo / "speechneurons/datasets/ravdess.py").read_text())


def test_shard_digests_change_with_exactly_the_files_of_a_shard(tmp_path):
    """The digests the Snakefile passes to the index_shard jobs as params: changed bytes of an audio
    file change its own shard's digest only, a new time or a copy with new times changes nothing;
    a non-audio file or a setting changes every shard's."""
    import os

    from speechneurons.datasets.state import shard_digests, shards_stand_alone
    from speechneurons.shards import shard_of

    root, _, _ = TREES["emodb"](tmp_path / "emodb")
    settings = {"corpus": {"name": "emodb"}, "filters": {}}
    cache = tmp_path / "digests.json"
    before = shard_digests(root, settings, 4, cache=cache)
    assert shard_digests(root, settings, 4) == before  # the cache changes no digest
    target = sorted(root.rglob("*.wav"))[0]
    mine = shard_of(target.name, 4)
    os.utime(target, ns=(1, 2))  # touch: same bytes
    assert shard_digests(root, settings, 4, cache=cache) == before
    data = target.read_bytes()
    target.unlink()
    target.write_bytes(data)  # a copy without times: a new inode and time, same bytes
    assert shard_digests(root, settings, 4, cache=cache) == before
    target.write_bytes(data[:-2] + bytes([data[-2] ^ 1, data[-1]]))  # one bit of the audio
    after = shard_digests(root, settings, 4, cache=cache)
    assert [a != b for a, b in zip(after, before)] == [k == mine for k in range(4)]
    # the cache is what the plan reads: bytes changed behind the same size, time and inode go unseen
    # (documented), and deleting the cache reads them again
    stamp = os.stat(target)
    with open(target, "r+b") as f:
        f.seek(len(data) - 1)
        f.write(bytes([data[-1] ^ 1]))
    os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert shard_digests(root, settings, 4, cache=cache) == after
    cache.unlink()
    assert shard_digests(root, settings, 4, cache=cache)[mine] != after[mine]
    (root / "notes.txt").write_text("a note")
    noted = shard_digests(root, settings, 4)
    assert all(a != b for a, b in zip(noted, after))
    assert shard_digests(root, {**settings, "min_duration_s": 1}, 4)[0] != noted[0]
    target.unlink()  # a deleted file's entry leaves the cache at its next rewrite (here: notes.txt is new)
    shard_digests(root, settings, 4, cache=cache)
    import json

    kept = json.loads(cache.read_text())
    assert str(target) not in kept and str(root / "notes.txt") in kept and len(kept) == len(list(root.rglob("*.*")))
    missing = shard_digests(tmp_path / "nowhere", settings, 2)
    assert missing[0] == missing[1]
    assert shards_stand_alone({}, {}) and not shards_stand_alone({"max_per_cell": 2}, {})
    assert not shards_stand_alone({}, {"clip_id_column": "id"})


def test_a_file_name_that_is_not_utf8_is_a_rejected_row_that_shows_it(tmp_path):
    """A Latin-1 name under the root (bytes Python keeps as lone surrogates) is no crash: the index
    rejects it with its bytes escaped and asks for a rename; its shard digest is computed; a table
    holds the row."""
    import os

    from speechneurons.datasets.index import gather_index, index_shard
    from speechneurons.datasets.state import shard_digests

    root, valid, _ = TREES["emodb"](tmp_path / "emodb")
    bad = os.fsdecode(b"caf\xe9.wav")
    (root / bad).write_bytes(b"RIFF")
    folder = root / os.fsdecode(b"d\xf6ner")
    folder.mkdir()
    (folder / "03a01Fa.wav").write_bytes(b"RIFF")
    assert len(set(shard_digests(root, {}, 2))) == 2
    corpus = load_corpus("emodb")
    parts = [index_shard(corpus, root, IndexFilters(), k, 2, progress=False) for k in range(2)]
    index = gather_index(parts, corpus, root, IndexFilters())
    rows = index.rejected.set_index("path")["reason"]
    assert "UTF-8" in rows["caf\\xe9.wav"] and "rename" in rows["caf\\xe9.wav"]
    assert "nothing in the folder was read" in rows["d\\xf6ner"]
    assert len(index.clips) == valid  # every good clip still indexed
    index.rejected.to_parquet(tmp_path / "rejected.parquet")


@pytest.mark.parametrize("name", sorted(TREES))
def test_the_index_in_shards_equals_the_index_in_one_pass(name, tmp_path):
    """Each shard's part (its own files only) gathered gives exactly the one-pass index: the same
    clips and rejected rows, every entry in one part."""
    from speechneurons.datasets.index import gather_index, index_shard

    root, valid, bad = TREES[name](tmp_path / "data")
    corpus = load_corpus(name, options(name))
    filters = IndexFilters.from_config({}, corpus.spec)
    whole = build_index(corpus, root, filters, progress=False)
    parts = [index_shard(corpus, root, filters, k, 3, progress=False) for k in range(3)]
    assert sum(len(part.clips) for part in parts) == len(whole.clips) == valid
    assert sum(len(part.rejected) for part in parts) == len(whole.rejected) == len(bad)
    gathered = gather_index(parts, corpus, root, filters)
    pd.testing.assert_frame_equal(gathered.clips, whole.clips)
    pd.testing.assert_frame_equal(gathered.rejected, whole.rejected)
    assert gathered.notes == whole.notes


def test_clip_ids_are_unique_across_shards(tmp_path):
    """Manifest clip ids from a column can pair files of different shards: the gather rejects the
    later path, as one pass does."""
    from speechneurons.datasets.index import gather_index, index_shard
    from speechneurons.shards import shard_of

    root, _, _ = TREES["manifest"](tmp_path / "data")
    table = pd.read_csv(root / "clips.tsv", sep="\t")
    listed = table[table["file"].map(lambda f: (root / f).is_file() and f.startswith("rec/t"))]
    listed = listed.drop_duplicates("file", keep=False)
    a, b = next((x, y) for x in listed["file"] for y in listed["file"]
                if shard_of(x, 2) != shard_of(y, 2))
    table["id"] = [f"id{i}" for i in range(len(table))]
    table.loc[table["file"] == b, "id"] = table.loc[table["file"] == a, "id"].iloc[0]
    table.to_csv(root / "clips.tsv", sep="\t", index=False)
    corpus = load_corpus("manifest", {**MANIFEST, "clip_id_column": "id"})
    filters = IndexFilters.from_config({}, corpus.spec)
    whole = build_index(corpus, root, filters, progress=False)
    gathered = gather_index([index_shard(corpus, root, filters, k, 2, progress=False) for k in range(2)],
                            corpus, root, filters)
    first, later = sorted([a, b])
    reason = whole.rejected.set_index("path").loc[later, "reason"]
    assert reason == f"duplicate clip_id, first seen at {first}"
    assert gathered.rejected.set_index("path").loc[later, "reason"] == reason
    pd.testing.assert_frame_equal(gathered.clips, whole.clips)
