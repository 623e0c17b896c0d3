"""Sphinx configuration of the course website (built by tools/build_site.py, `make site`).

The source folder is the repository root, so the README and the notebooks are used where they are and their
relative links (README -> notebooks/03_multiblock_masking.ipynb, docs/exercises.md...) become links between
the site's pages. Only the files in ``include_patterns`` are pages. Notebooks are shown with their committed
outputs and never executed (myst-nb, ``# Maths (three display equations) with a local MathJax 2: the copy that ships in the jupyter-server-mathjax
# package, copied into _static/mathjax after the build (a CDN's copy would need the network).
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
mathjax2_config = {  # that copy has one font, STIX-Web; myst-nb marks notebooks "ignore" except their math
    "tex2jax": {"processClass": "math|output_area", "ignoreClass": "tex2jax_ignore|mathjax_ignore"},
    "HTML-CSS": {"availableFonts": ["STIX-Web"], "preferredFont": "STIX-Web", "webFont": "STIX-Web", "imageFont": None},
    "SVG": {"font": "STIX-Web"},
}

nb_execution_mode = "off"``). The build needs no network: no
intersphinx, no remote images, the theme's assets are bundled.
"""

import os
from pathlib import Path

project = "minijepa"
author = "the minijepa course"
copyright = "the minijepa course (MIT licence)"

extensions = ["myst_nb"]
root_doc = "README"  # the README's course map is the home page
include_patterns = ["README.md", "notebooks/[0-9][0-9]_*.ipynb", "docs/exercises.md", "docs/notebooks.md",
                    "benchmarks/README.md"]
exclude_patterns = [".venv", "**/.ipynb_checkpoints", "site", "build", "dist", "runs"]

# Maths (three display equations) with a local MathJax 2: the copy that ships in the jupyter-server-mathjax
# package, copied into _static/mathjax after the build (a CDN's copy would need the network).
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
mathjax2_config = {  # that copy has one font, STIX-Web; myst-nb marks notebooks "ignore" except their math
    "tex2jax": {"processClass": "math|output_area", "ignoreClass": "tex2jax_ignore|mathjax_ignore"},
    "HTML-CSS": {"availableFonts": ["STIX-Web"], "preferredFont": "STIX-Web", "webFont": "STIX-Web", "imageFont": None},
    "SVG": {"font": "STIX-Web"},
}

nb_execution_mode = "off"  # the committed outputs are the figures
nb_output_stderr = "show"
myst_heading_anchors = 3  # README links such as #evaluation-what-the-numbers-mean
myst_enable_extensions = ["dollarmath"]
suppress_warnings = ["myst.header"]  # the notebooks' cells start at any heading level

html_theme = "sphinx_book_theme"
html_title = "minijepa: I-JEPA from scratch"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "home_page_in_toc": True,
}
html_show_sourcelink = False
html_copy_source = True  # the download button offers each page's source: a notebook as .ipynb
# The standalone explorer pages (python -m minijepa.explorer_pages), staged by tools/build_site.py, are copied
# as they are to site/explorers/.
html_extra_path = [os.environ["MINIJEPA_SITE_EXTRA"]] if os.environ.get("MINIJEPA_SITE_EXTRA") else []


# The site's navigation: the README (home page) gets a hidden table of contents at build time, so the file
# itself stays plain Markdown for GitHub. Order: the notebooks, then the guides.
_NAVIGATION = {
    "The course": sorted(f"notebooks/{p.stem}" for p in (Path(__file__).parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb")),
    "Guides": ["docs/notebooks", "docs/exercises", "benchmarks/README"],
}


def _add_navigation(app, docname, source):
    if docname == root_doc:
        for caption, pages in _NAVIGATION.items():
            source[0] += f"\n\n```{{toctree}}\n:hidden:\n:maxdepth: 1\n:caption: {caption}\n\n" + "\n".join(pages) + "\n```\n"


def _copy_mathjax(app, exception):
    import shutil

    import jupyter_server_mathjax

    if exception is None and app.builder.format == "html":
        static = Path(jupyter_server_mathjax.__file__).parent / "static"
        shutil.copytree(static, Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("localization"))  # English is built in


def setup(app):
    app.connect("source-read", _add_navigation)
    app.connect("build-finished", _copy_mathjax)
