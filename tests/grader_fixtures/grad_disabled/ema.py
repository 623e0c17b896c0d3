# Appended to a correct ema.py by tests/test_grader.py: switches autograd off for the whole process at
# import, which would break every later exercise that needs gradients.
import torch

torch.set_grad_enabled(False)
