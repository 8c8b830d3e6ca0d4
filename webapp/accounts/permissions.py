"""DRF permissions by role."""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from webapp.accounts.selectors import user_can_manage, user_can_operate


class CanOperate(BasePermission):
    """Operators and admins; viewers get 403."""

    message = "Only operators and admins may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return user_can_operate(request.user)


class CanManage(BasePermission):
    """Admins only; viewers and operators get 403."""

    message = "Only admins may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return user_can_manage(request.user)
