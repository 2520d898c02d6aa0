"""The grade models: a factorization model and the original concat-linear one.

Both take int32 student and course indices of shape ``[batch]`` and return
grades of shape ``[batch, 1]`` in the data's own units: they learn on grades
normalised to [0, 1] by the declared scale and carry the inverse as two
constants, so no caller ever rescales.
"""

from __future__ import annotations

import torch
from torch import nn

INIT_STD = 0.01  # small factors: unseen students start near the bias-only model


class GradeModel(nn.Module):
    """Shared scale handling; subclasses define :meth:`normalized`."""

    grade_min: torch.Tensor
    grade_span: torch.Tensor

    def __init__(self, grade_min: float, grade_max: float) -> None:
        super().__init__()
        # Buffers, not attributes: they are saved in the state_dict and exported
        # into the ONNX graph as constants.
        self.register_buffer("grade_min", torch.tensor(float(grade_min)))
        self.register_buffer("grade_span", torch.tensor(float(grade_max - grade_min)))

    def normalized(self, user: torch.Tensor, course: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, user: torch.Tensor, course: torch.Tensor) -> torch.Tensor:
        return self.normalized(user, course) * self.grade_span + self.grade_min


class FactorizationModel(GradeModel):
    """Global bias + student bias + course bias + <student factors, course factors>."""

    def __init__(
        self,
        n_users: int,
        n_courses: int,
        dim: int,
        grade_min: float,
        grade_max: float,
        global_mean: float = 0.5,
    ) -> None:
        super().__init__(grade_min, grade_max)
        self.user_factors = nn.Embedding(n_users, dim)
        self.course_factors = nn.Embedding(n_courses, dim)
        self.user_bias = nn.Embedding(n_users, 1)
        self.course_bias = nn.Embedding(n_courses, 1)
        self.global_bias = nn.Parameter(torch.tensor([float(global_mean)]))
        nn.init.normal_(self.user_factors.weight, std=INIT_STD)
        nn.init.normal_(self.course_factors.weight, std=INIT_STD)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.course_bias.weight)

    def normalized(self, user: torch.Tensor, course: torch.Tensor) -> torch.Tensor:
        interaction = (self.user_factors(user) * self.course_factors(course)).sum(
            dim=-1, keepdim=True
        )
        return (
            self.global_bias
            + self.user_bias(user)
            + self.course_bias(course)
            + interaction
        )


class ConcatLinearModel(GradeModel):
    """The original workflow's model: one Linear layer over both embeddings.

    A linear function of a concatenation is a sum of a student term and a course
    term, so it cannot express any student-by-course interaction. It is kept
    for comparison only.
    """

    def __init__(
        self,
        n_users: int,
        n_courses: int,
        dim: int,
        grade_min: float,
        grade_max: float,
        global_mean: float = 0.5,
    ) -> None:
        super().__init__(grade_min, grade_max)
        self.user_embedding = nn.Embedding(n_users, dim)
        self.course_embedding = nn.Embedding(n_courses, dim)
        self.linear = nn.Linear(2 * dim, 1)
        nn.init.normal_(self.user_embedding.weight, std=INIT_STD)
        nn.init.normal_(self.course_embedding.weight, std=INIT_STD)
        nn.init.constant_(self.linear.bias, float(global_mean))

    def normalized(self, user: torch.Tensor, course: torch.Tensor) -> torch.Tensor:
        both = torch.cat([self.user_embedding(user), self.course_embedding(course)], -1)
        return self.linear(both)


MODELS: dict[str, type[FactorizationModel] | type[ConcatLinearModel]] = {
    "fm": FactorizationModel,
    "concat-linear": ConcatLinearModel,
}


def build_model(
    kind: str,
    n_users: int,
    n_courses: int,
    dim: int,
    grade_min: float,
    grade_max: float,
    global_mean: float = 0.5,
) -> GradeModel:
    """Instantiate a model by its name in :data:`MODELS`."""
    cls = MODELS[kind]
    return cls(n_users, n_courses, dim, grade_min, grade_max, global_mean)
