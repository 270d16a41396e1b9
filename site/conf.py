"""Sphinx configuration of the course website, staged by ``python -m tools.site.build`` (do not run by hand).

Sphinx + myst-nb (notebooks from their stored outputs, never executed) + sphinx-book-theme.
Everything the pages load is in the built folder: the theme's own CSS, JS and icon fonts,
MathJax 3 copied from the ``sphinx-mathjax-offline`` wheel, Sphinx's offline search index.
``tools.site.build`` passes ``nb_code_prompt_show`` for the instructor's copy (``--solutions``).
"""
project = "Flow Matching, from change of variables to conditional flow matching"
author = "the course authors"
copyright = "the course authors"
html_title = "Flow Matching course"

extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["_build", "lectures"]
nb_execution_mode = "off"                 # stored outputs of solutions/, never re-run
nb_ipywidgets_js = {}                     # no widget manager from a CDN: widgets are animations
nb_merge_streams = True
nb_output_stderr = "show"
nb_code_prompt_show = "Show code cell {type}"
nb_code_prompt_hide = "Hide code cell {type}"
myst_enable_extensions = ["dollarmath", "amsmath", "html_image"]
myst_heading_anchors = 3
myst_dmath_double_inline = True
suppress_warnings = ["mystnb.unknown_mime_type"]

# MathJax 3 from this site, never a CDN (tools.site.build copies it into _static/mathjax)
mathjax_path = "mathjax/tex-chtml.js"
mathjax3_config = {"options": {"processHtmlClass": "tex2jax_process|mathjax_process|math|output_area"}}

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_context = {"default_mode": "light"}  # else the theme logs "invalid theme mode" on a first visit
html_favicon = "_static/favicon.svg"   # else the browser asks the server for /favicon.ico
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "use_issues_button": False,
    "use_edit_page_button": False,
    "launch_buttons": {},
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "icon_links": [],
    "analytics": {},
}
