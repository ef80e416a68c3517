import gzip
import hashlib
import socket
import time

import pytest
import yaml

from fmnist.data import sources as fetching
from fmnist.utils.errors import run_stage
from stages import download
from tests.conftest import Route, sha256s, shipped_raw, write_gz_dir, write_params

NAME = "train-labels-idx1-ubyte"


@pytest.fixture
def project(tmp_path, monkeypatch, synthetic):
    """An empty project directory holding params.yaml whose checksums pin the synthetic files."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fetch(name, sources, synthetic, timeout=5.0, retries=0):
    return fetching.fetch(name, sha256s(synthetic)[name], sources, fetching.http_session(retries), timeout)


def test_http_success(http_server, synthetic):
    http_server.routes[f"/{NAME}.gz"] = Route(gzip.compress(synthetic[NAME]))
    assert fetch(NAME, [http_server.url], synthetic) == synthetic[NAME]


def test_404_then_next_source(http_server, synthetic, capsys):
    http_server.routes[f"/good/{NAME}.gz"] = Route(gzip.compress(synthetic[NAME]))
    assert fetch(NAME, [f"{http_server.url}/missing", f"{http_server.url}/good"], synthetic) == synthetic[NAME]
    assert "HTTP 404; trying the next source" in capsys.readouterr().err


def test_wrong_checksum_rejected_then_next(http_server, synthetic, capsys):
    tampered = bytearray(synthetic[NAME])
    tampered[-1] ^= 1
    http_server.routes[f"/evil/{NAME}.gz"] = Route(gzip.compress(bytes(tampered)))
    http_server.routes[f"/good/{NAME}.gz"] = Route(gzip.compress(synthetic[NAME]))
    assert fetch(NAME, [f"{http_server.url}/evil", f"{http_server.url}/good"], synthetic) == synthetic[NAME]
    assert "does not match the pinned" in capsys.readouterr().err


def test_a_body_with_no_content_length_is_still_capped_as_it_streams(http_server, synthetic, monkeypatch):
    monkeypatch.setattr(fetching, "MAX_DOWNLOAD_BYTES", 100_000)
    http_server.routes[f"/{NAME}.gz"] = Route(bytes(300_000), send_length=False)
    with pytest.raises(fetching.DownloadError) as err:
        fetch(NAME, [http_server.url], synthetic)
    assert f"({http_server.url}: body is larger than any Fashion-MNIST file)" in str(err.value)


def test_truncated_body_rejected(http_server, synthetic):
    # A whole, valid gzip file, but fewer bytes than the Content-Length announced, then the
    # connection closed: only the length check can tell that the body was cut.
    body = gzip.compress(synthetic[NAME])
    http_server.routes[f"/{NAME}.gz"] = Route(body, declared_length=len(body) + 100)
    with pytest.raises(fetching.DownloadError) as err:
        fetch(NAME, [http_server.url], synthetic)
    assert f"no source gave a verified {NAME}.gz ({http_server.url}: " in str(err.value)
    assert f"IncompleteRead({len(body)} bytes read, 100 more expected)" in str(err.value)


def test_a_body_cut_short_sends_the_download_to_the_next_source(http_server, synthetic, capsys):
    body = gzip.compress(synthetic[NAME])
    http_server.routes[f"/cut/{NAME}.gz"] = Route(body, declared_length=len(body) + 100)
    http_server.routes[f"/good/{NAME}.gz"] = Route(body)
    assert fetch(NAME, [f"{http_server.url}/cut", f"{http_server.url}/good"], synthetic) == synthetic[NAME]
    err = capsys.readouterr().err
    assert f"IncompleteRead({len(body)} bytes read, 100 more expected)" in err
    assert "trying the next source" in err


def test_truncated_gzip_without_length_rejected(http_server, synthetic):
    body = gzip.compress(synthetic[NAME])
    http_server.routes[f"/{NAME}.gz"] = Route(body[: len(body) // 2])
    with pytest.raises(fetching.DownloadError, match="truncated gzip stream"):
        fetch(NAME, [http_server.url], synthetic)


def test_slow_server_hits_timeout(http_server, synthetic):
    http_server.routes[f"/{NAME}.gz"] = Route(gzip.compress(synthetic[NAME]), delay=3)
    with pytest.raises(fetching.DownloadError, match=r"timed out after 0.5s"):
        fetch(NAME, [http_server.url], synthetic, timeout=0.5)


def test_html_page_and_oversized_body_rejected(http_server, synthetic, monkeypatch):
    http_server.routes[f"/html/{NAME}.gz"] = Route(b"<html>login</html>")
    http_server.routes[f"/big/{NAME}.gz"] = Route(bytes(2000))
    monkeypatch.setattr(fetching, "MAX_DOWNLOAD_BYTES", 1000)
    with pytest.raises(fetching.DownloadError) as err:
        fetch(NAME, [f"{http_server.url}/html", f"{http_server.url}/big"], synthetic)
    assert "not valid gzip" in str(err.value)
    assert "larger than any Fashion-MNIST file" in str(err.value)


def test_retries_transient_errors(http_server, synthetic):
    http_server.routes[f"/{NAME}.gz"] = Route(b"busy", status=503)
    with pytest.raises(fetching.DownloadError, match="HTTP 503"):
        fetch(NAME, [http_server.url], synthetic, retries=2)
    assert http_server.routes[f"/{NAME}.gz"].hits == 3  # the first try and two retries


def test_local_directory_source(tmp_path, synthetic):
    source = write_gz_dir(tmp_path / "mirror", synthetic)
    assert fetch(NAME, [str(tmp_path / "nowhere"), str(source)], synthetic) == synthetic[NAME]


def test_main_writes_only_the_four_files_with_stable_bytes(project, synthetic, http_server):
    for name, data in synthetic.items():
        http_server.routes[f"/{name}.gz"] = Route(gzip.compress(data, mtime=123))
    local = write_gz_dir(project / "mirror", synthetic)
    write_params(project, download={"sources": [http_server.url], "sha256": sha256s(synthetic)})
    assert run_stage(download.main, []) == 0
    from_http = {p.name: p.read_bytes() for p in (project / "data/raw").iterdir()}
    assert sorted(from_http) == sorted(f"{n}.gz" for n in synthetic)
    for name in synthetic:
        assert hashlib.sha256(gzip.decompress(from_http[f"{name}.gz"])).hexdigest() == sha256s(synthetic)[name]

    # Another source, recompressed differently, must give the very same bytes (and DVC hash).
    write_params(project, download={"sources": [str(local)], "sha256": sha256s(synthetic)})
    assert run_stage(download.main, []) == 0
    assert {p.name: p.read_bytes() for p in (project / "data/raw").iterdir()} == from_http


@pytest.mark.parametrize(
    ("name", "refusal"),
    [
        ("../../evil", "error: params.yaml: unknown key 'download.sha256.../../evil'; "),
        (
            "/tmp/evil-idx1-ubyte",
            "error: params.yaml: unknown key 'download.sha256./tmp/evil-idx1-ubyte' (did you mean "
            "'download.sha256.train-labels-idx1-ubyte'?); ",
        ),
        (
            "train-images-idx3-ubyte/../../x",
            "error: params.yaml: unknown key 'download.sha256.train-images-idx3-ubyte/",
        ),
    ],
)
def test_a_hostile_file_name_in_download_sha256_is_refused_and_nothing_is_written(
    tmp_path, monkeypatch, capsys, name, refusal
):
    # Only the schema's four names are ever a file name; a path smuggled in as a key never is.
    monkeypatch.chdir(tmp_path)
    params = shipped_raw()
    params["download"]["sha256"][name] = "0" * 64
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    assert run_stage(download.main, []) == 2
    err = capsys.readouterr().err
    assert err.startswith(refusal)
    assert err.endswith(
        "allowed here: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before


def test_main_all_sources_fail_writes_nothing(project, synthetic, capsys):
    write_params(project, download={"sources": [str(project / "nowhere")], "sha256": sha256s(synthetic)})
    assert run_stage(download.main, []) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: no source gave a verified")
    assert "nowhere: not found" in err
    assert "apt-get install dataset-fashion-mnist" in err
    assert not (project / "data").exists()


def test_probe(project, synthetic, http_server):
    http_server.routes["/train-labels-idx1-ubyte.gz"] = Route(b"x")
    write_params(project, download={"sources": [str(project / "nowhere"), http_server.url]})
    assert run_stage(download.main, ["--probe"]) == 0
    write_params(project, download={"sources": [f"{http_server.url}/missing"]})
    assert run_stage(download.main, ["--probe"]) == 1


def test_redirects_are_followed_and_the_target_still_verified(http_server, synthetic):
    http_server.routes[f"/old/{NAME}.gz"] = Route(status=301, location=f"/new/{NAME}.gz")
    http_server.routes[f"/new/{NAME}.gz"] = Route(gzip.compress(synthetic[NAME]))
    assert fetch(NAME, [f"{http_server.url}/old"], synthetic) == synthetic[NAME]

    tampered = gzip.compress(synthetic[NAME][:-1] + b"\x00")
    http_server.routes[f"/evil/{NAME}.gz"] = Route(status=302, location=f"/tampered/{NAME}.gz")
    http_server.routes[f"/tampered/{NAME}.gz"] = Route(tampered)
    with pytest.raises(fetching.DownloadError, match="does not match the pinned"):
        fetch(NAME, [f"{http_server.url}/evil"], synthetic)


def test_a_redirect_loop_ends_in_an_error(http_server, synthetic):
    http_server.routes[f"/loop/{NAME}.gz"] = Route(status=302, location=f"/loop/{NAME}.gz")
    with pytest.raises(fetching.DownloadError, match="redirects"):
        fetch(NAME, [f"{http_server.url}/loop"], synthetic)


def test_every_source_down_or_stalling_is_tried_1_plus_retries_times_each_cut_at_the_timeout_and_named(
    http_server, synthetic
):
    with socket.socket() as sock:  # a port nothing listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    stalling = http_server.routes[f"/stall/{NAME}.gz"] = Route(gzip.compress(synthetic[NAME]), stall=30)
    slow_body = http_server.routes[f"/slow/{NAME}.gz"] = Route(gzip.compress(synthetic[NAME]), delay=30)
    timeout, retries = 0.5, 2
    start = time.monotonic()
    with pytest.raises(fetching.DownloadError) as err:
        fetch(NAME, [closed, f"{http_server.url}/stall", f"{http_server.url}/slow"], synthetic, timeout, retries)
    elapsed = time.monotonic() - start
    assert stalling.hits == 1 + retries  # no answer within the timeout: urllib3 tries again
    assert slow_body.hits == 1  # headers came, then the body stalled: cut once, never retried
    assert elapsed < 30  # a hang's bound: no try waited out the 30 s stall
    message = str(err.value)
    assert message.startswith(f"no source gave a verified {NAME}.gz ({closed}: cannot connect; ")
    assert f"{http_server.url}/stall: timed out after 0.5s; " in message
    assert f"{http_server.url}/slow: timed out after 0.5s); " in message
