# SPDX-License-Identifier: GPL-2.0
# Sphinx configuration of the project's documentation.  Built with
# Debian 12's python3-sphinx, no extension:
#   sphinx-build -W -b html Documentation OUTDIR
# scripts/doccheck.py runs that build and checks the shell blocks.

project = "KVM atomic memslot updates"
author = "the kvm-atomic-memslots project"
root_doc = "index"
exclude_patterns = ["_build"]
# Literal blocks ('::') are not highlighted; shell blocks say 'sh'.
highlight_language = "none"
html_theme = "alabaster"
html_show_sourcelink = False
html_show_copyright = False
