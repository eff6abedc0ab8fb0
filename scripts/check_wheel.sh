#!/usr/bin/env bash
# Build the wheel, install it into a fresh virtual environment outside the checkout, and run
# what a user runs: `healthivert demo`, `healthivert run` on the demo's study, the viewer's
# script once in-process (Streamlit's AppTest: it imports and renders), and `healthivert view`
# (started, answered over HTTP, stopped). Fails if the wheel lacks the shipped models, the
# VerSe grades or the viewer, or if it needs any file of the checkout.
# Usage: scripts/check_wheel.sh [PYTHON]   (default: python3; pip's cache makes reruns fast)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-python3}"
WORK="$(mktemp -d)"
VIEW_PID=""
# The venv is tens of thousands of files (torch): removing them took 2-3 minutes on a busy
# 2-core machine, so it happens in the background once the check has its answer.
cleanup() {
    if [ -n "$VIEW_PID" ]; then kill "$VIEW_PID" 2>/dev/null || true; fi
    nohup rm -rf "$WORK" >/dev/null 2>&1 &
}
trap cleanup EXIT
START=$SECONDS

# Build from a copy of the tree's files (tracked and untracked, not ignored), so a stale build/
# of the checkout cannot put removed modules in the wheel and the build writes nothing here.
echo "wheel check: building in $WORK"
mkdir -p "$WORK/src"
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi; done \
    | tar --null -T - -cf - | tar -xf - -C "$WORK/src"
"$PY" -m pip wheel --quiet --no-deps -w "$WORK/dist" "$WORK/src"
WHEEL="$(ls "$WORK"/dist/healthivert-*.whl)"
"$PY" - "$WHEEL" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["healthivert/viewer/app.py", "healthivert/viewer/ui_study.py", "healthivert/models/grader_svm.skops",
        "healthivert/models/grader_svm_gan.skops", "healthivert/models/synthesizer_gan.safetensors",
        "healthivert/models/segmenter_unet.safetensors", "healthivert/data/verse2019.csv"]
missing = [n for n in need if n not in names]
assert not missing, f"the wheel lacks {missing}"
print(f"wheel check: {len(names)} files in the wheel, models, grades and viewer among them")
EOF

"$PY" -m venv "$WORK/venv"
BIN="$WORK/venv/bin"
"$BIN/pip" install --quiet --upgrade pip
"$BIN/pip" install --quiet torch==2.13.0  # the local CPU wheel, pinned as in the Makefile
"$BIN/pip" install --quiet -c constraints.txt "$WHEEL"
echo "wheel check: installed in $(( SECONDS - START )) s"

cd "$WORK"  # nothing of the checkout is on the path from here
"$BIN/python" -c "import healthivert, sys; p = healthivert.__file__; print('healthivert from', p); \
sys.exit(0 if p.startswith('$WORK/venv/') else 'not the installed wheel')"
"$BIN/healthivert" --version
"$BIN/healthivert" demo --out demo
MASK="demo/phantom/derivatives/sub-demo/sub-demo_seg-vert_msk.nii.gz"
CT="demo/phantom/rawdata/sub-demo/sub-demo_ct.nii.gz"
"$BIN/healthivert" run --mask "$MASK" --ct "$CT" --study-id one --out results/one
test -s results/one/result.json
"$BIN/python" -c "from healthivert.evaluation import load_truth; n = len(load_truth()); assert n > 1000, n; \
print(f'wheel check: evaluate\'s default grades load ({n} vertebrae)')"

# the viewer's script, run once as a browser session would run it (a server's /healthz answers
# before any script runs, so this is what proves the viewer imports and renders from the wheel)
HEALTHIVERT_RESULTS="$WORK/results" HEALTHIVERT_DB="sqlite:///$WORK/reviews.sqlite" HEALTHIVERT_REVIEWER=wheel-check \
"$BIN/python" - <<'EOF'
from streamlit.testing.v1 import AppTest

from healthivert.review.launch import app_script

at = AppTest.from_file(str(app_script()), default_timeout=120).run()
assert not at.exception, at.exception
at.selectbox(key="study").select("one").run()
assert not at.exception, at.exception
assert at.title[0].value == "Study one", [t.value for t in at.title]
print(f"wheel check: the viewer ({app_script()}) shows study 'one'")
EOF

PORT="$("$BIN/python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")"
"$BIN/healthivert" view results --port "$PORT" --db "sqlite:///$WORK/reviews.sqlite" >"$WORK/view.log" 2>&1 &
VIEW_PID=$!
HEALTH="http://127.0.0.1:$PORT/_stcore/health"
for _ in $(seq 90); do
    if "$BIN/python" -c "import urllib.request as u; u.urlopen('$HEALTH', timeout=2)" 2>/dev/null; then
        break
    fi
    kill -0 "$VIEW_PID" 2>/dev/null || { cat "$WORK/view.log"; exit 1; }
    sleep 1
done
"$BIN/python" -c "import urllib.request as u; assert u.urlopen('$HEALTH', timeout=5).read().strip() == b'ok'" \
    || { cat "$WORK/view.log"; exit 1; }
kill -TERM "$VIEW_PID"
wait "$VIEW_PID" || true
VIEW_PID=""
if grep -q Traceback "$WORK/view.log"; then cat "$WORK/view.log"; exit 1; fi
echo "wheel check: demo, run and view work from $(basename "$WHEEL") in a fresh environment ($(( SECONDS - START )) s)"
