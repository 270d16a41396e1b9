"""Instructors' tools (INSTRUCTORS.md): ``assignment`` (notebooks with chosen exercises open),
``nbgrader_export``, ``catalogue`` (EXERCISES.md), and the autograder (``make grade``,
``python -m tools.grading.grade``), one module a part:

- ``records``: the limits a run keeps, a grade an exercise, a grade a student;
- ``client``: the kernel client (nbclient with a cap on each cell's output);
- ``plan``: planning a notebook (the cells to run, the official check after each answer);
- ``run``: running a student's notebooks in one kernel (timeouts, crashes, restarts);
- ``kernel``: the grader's side inside the student's kernel (checks, fingerprints);
- ``tamper``: tamper detection (file hashes, genuine fingerprints, what differed);
- ``student``: one student (their notebooks recognised and graded);
- ``gradebook``: a class's grades.csv, grades.json, feedback and resume records;
- ``grade``: a class, locally or on Dask, and the command line (its docstring tells how a student
  is graded);
- ``deps``: the static analysis that marks the cells fast grading runs (``python -m tools.grading.deps``).
- ``challenge``: the few-step challenge (``make assignment/grade CHALLENGE=fewstep``): ``challenge_handout``
  writes what students get, ``challenge_sandbox`` runs one submission (NFE counted, files refused).
"""
