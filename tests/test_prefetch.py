"""Prefetch: checksums are recorded and verified; a failed download is reported, not raised."""

from pathlib import Path

from transfer_utils.course import prefetch


def test_checksums_record_and_verify(isolated_data):
    folder = isolated_data / "assets" / "hf" / "org--model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    prefetch.record_checksums([folder / "config.json"])
    assert prefetch.verify_checksums() == []
    (folder / "config.json").write_text('{"changed": true}')
    assert prefetch.verify_checksums() == ["hf/org--model/config.json"]


def test_prefetch_reports_failures_and_records_successes(isolated_data, monkeypatch):
    def fake_fetcher(name):
        def fetch():
            if name == "offline-model":
                raise OSError("no network\nsecond line")
            path = isolated_data / "assets" / f"{name}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"weights")
            return [path]
        return fetch

    monkeypatch.setattr(prefetch, "fetcher_for", fake_fetcher)
    report = prefetch.prefetch(["good-model", "offline-model"])
    assert report == {"good-model": "ok (1 files)", "offline-model": "failed: OSError: no network"}
    assert "good-model.bin" in Path(prefetch.checksums_file()).read_text()
