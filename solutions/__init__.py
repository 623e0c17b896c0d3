"""The course exercises: one file per topic, fifteen exercises in all.

    patches.py    patchify, unpatchify, sincos_2d                    notebook 1
    attention.py  attention_weights, attention, block_forward        notebook 2
    masks.py      sample_block, multiblock_masks, gather_tokens      notebook 3
    predictor.py  predictor_forward                                  notebook 4
    ema.py        ema_update, momentum_schedule                      notebook 5
    losses.py     ijepa_loss                                         notebook 6
    schedules.py  warmup_cosine                                      notebook 6
    probe.py      linear_probe                                       notebook 7

``exercises/`` holds the stubs you complete; ``solutions/`` the same files completed (the stubs are generated
from them by ``python solutions/make_exercises.py``). ``check.py`` is the notebooks' helper, not an exercise.
How to work on them and how they are graded: docs/exercises.md.
"""
