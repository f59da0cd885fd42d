"""Write an output-free notebook from a list of (kind, source) cells: `python scripts/new_notebook.py`.

Used by contributors who prefer composing notebooks as Python lists; it always sets the python3
kernelspec and strips outputs, so the hygiene tests pass.
"""

import sys

import nbformat


def write_notebook(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for kind, src in cells:
        make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        nb.cells.append(make(src.strip("\n")))
    nbformat.write(nb, path)


if __name__ == "__main__":
    sys.exit("import write_notebook from this file")
